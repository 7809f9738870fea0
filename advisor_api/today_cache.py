"""Advisors' daily lists kept ready as encoded JSON.

A phone opens the list many times a day and it changes only when one of the
advisor's tasks does. On PostgreSQL every statement that touches tasks notifies
which advisors it touched (a trigger of the tasks app); this process listens and
drops exactly those lists. A short time-to-live bounds what no notification covers
(a points balance changed by a redemption) and a lost listener connection. Without
a notification channel (SQLite) nothing is cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg

from core.db import postgres_dsn

log = logging.getLogger("tiantian.cache")
CHANNEL = "tiantian_task_changes"
MAX_ENTRIES = 100_000  # advisors


class TodayCache:
    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[int, dict[date, tuple[float, bytes]]] = {}
        # Bumped on every invalidation of an advisor: a list computed while a change
        # landed is not stored over the change.
        self._generation: dict[int, int] = {}
        self._all_generation = 0
        self._conn: Any = None

    @property
    def enabled(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        dsn = postgres_dsn()
        if self._ttl <= 0 or dsn is None:
            return
        self._conn = await asyncpg.connect(dsn)
        await self._conn.add_listener(CHANNEL, self._on_notify)
        self._conn.add_termination_listener(lambda _: self.clear())

    async def stop(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._all_generation += 1

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == "*":
            self.clear()
            return
        for item in payload.split(","):
            advisor = int(item)
            self._generation[advisor] = self._generation.get(advisor, 0) + 1
            self._entries.pop(advisor, None)

    async def get(
        self, advisor_id: int, day: date, compute: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        if not self.enabled:
            return await compute()
        hit = self._entries.get(advisor_id, {}).get(day)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        seen = (self._generation.get(advisor_id, 0), self._all_generation)
        body = await compute()
        if seen == (self._generation.get(advisor_id, 0), self._all_generation) and self.enabled:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries.setdefault(advisor_id, {})[day] = (now + self._ttl, body)
        return body
