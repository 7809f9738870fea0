"""League tables ranked once and kept in memory until a score they rank changes.

An exact rank is one more than the lines that scored more: an index range as long as
the rank itself (half the chain's advisors for the median advisor), twice a request
(this period and last). Ranked once, a table answers every caller's top, own line
and rank change from memory.

A ``Ladder`` is one ranking: a period's lines of a scope by the default weights (the
league tables), or everyone a full table ranks (a contest's window and weights, the
per-advisor store table). On PostgreSQL every statement that changes the totals
notifies the periods it changed (a trigger of this app), and every change to the
advisors or stores (their scope, their active flag) notifies too (a trigger of the
members app); this process listens and drops exactly the ladders they touch, and
drops every ladder if its listening connection is lost. A time-to-live (five minutes
by default) bounds anything else. Without a notification channel (SQLite),
or with a time-to-live of 0, nothing is kept and every table is ranked in SQL.

A busy chain changes the current month's totals with every sale, so a ladder dropped
at each change would be ranked afresh (0.3–1 s at 1M members) for nearly every
request. A ladder a score change touches is therefore kept a few seconds more
(``fresh_seconds``, 3 by default): the first request after that ranks it again while
the others are still answered from the one kept, so a table is at most a few seconds
behind the ledger and no request waits for a ranking but the very first. Registry
changes (an advisor moved, a store's region) still drop every ladder at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from core.db import postgres_dsn
from incentives.ranking import Ranked, Subject, rank_all, rank_everyone, scope_lines
from incentives.rules import KINDS, Weights
from members.scopes import Scope

log = logging.getLogger("tiantian.ladders")
SCORES_CHANNEL = "tiantian_score_changes"
REGISTRY_CHANNEL = "tiantian_registry_changes"
# Lines kept at most, over every ladder (about 100 bytes each): the national advisor
# table of a month and the month before are 100,000 at 1M members.
MAX_LINES = 600_000
MAX_CARDS = 200_000


@dataclass(slots=True)
class Ladder:
    """A ranking in table order (score down, then id), column by column
    (``ranking.LADDER_COLUMNS``): ranked once, read by every caller, a line made only
    when one is asked for."""

    columns: dict[str, list[Any]]
    position: dict[int, int]
    above_zero: int  # lines that scored more than nothing
    # What callers build from the ladder alone (a table's top entries), gone with it.
    memo: dict[Hashable, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, columns: dict[str, list[Any]]) -> Ladder:
        columns = _in_table_order(columns)
        ids, scores = columns["id"], columns["score"]
        above_zero = sum(1 for score in scores if score > 0)
        return cls(columns, dict(zip(ids, range(len(ids)), strict=True)), above_zero)

    def __len__(self) -> int:
        return len(self.columns["id"])

    def score_at(self, position: int) -> int:
        return int(self.columns["score"][position])

    def _line(self, i: int) -> Ranked:
        c = self.columns
        active = c["active_advisors"][i]
        return Ranked(
            int(c["id"][i]),
            int(c["rank"][i]),
            int(c["new_members"][i]),
            int(c["points"][i]),
            int(c["tasks_done"][i]),
            int(c["tasks_converted"][i]),
            int(c["score"][i]),
            None if active is None else int(active),
        )

    def top(self, limit: int) -> list[Ranked]:
        return [self._line(i) for i in range(min(limit, len(self)))]

    def lines_of(self, ids: Iterable[int]) -> dict[int, Ranked]:
        position = self.position
        return {i: self._line(position[i]) for i in ids if i in position}

    def rank_of_nothing(self) -> int:
        """Where one without a line stands: below everyone who scored."""
        return 1 + self.above_zero


def _in_table_order(columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The columns as the database sorted them; sorted here again only if it did not
    hand them over in that order (an aggregate over a sorted subquery keeps it, but
    nothing promises that)."""
    ids, scores = columns["id"], columns["score"]
    ordered = all(
        scores[i] > scores[i + 1] or (scores[i] == scores[i + 1] and ids[i] < ids[i + 1])
        for i in range(len(ids) - 1)
    )
    if ordered:
        return columns
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))
    return {name: [values[i] for i in order] for name, values in columns.items()}


def with_ranks(columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Standard competition ranks (1, 2, 2, 4) over a ladder's columns in table order."""
    columns = _in_table_order(columns)
    scores, ranks = columns["score"], columns["rank"]
    for i in range(len(scores)):
        ranks[i] = ranks[i - 1] if i and scores[i] == scores[i - 1] else i + 1
    return columns


@dataclass(slots=True)
class _Kept:
    ladder: Ladder
    periods: frozenset[str]
    expires: float
    changed: float | None = None  # when a score it ranks first changed after ranking


class Ladders:
    def __init__(self) -> None:
        self._ttl = 0.0
        self._fresh = 0.0
        self._kept: dict[Hashable, _Kept] = {}
        self._changed: dict[str, float] = {}  # period -> its last notified change
        self._building: dict[Hashable, asyncio.Future[Ladder]] = {}
        # Bumped when everything is dropped (a registry change, a lost channel): what was
        # read across one is not kept.
        self._generation = 0
        # Advisors' and stores' cards as the tables show them, until the registry changes.
        self._cards: dict[str, dict[int, dict[str, Any]]] = {}
        self._conn: Any = None

    @property
    def enabled(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self, ttl_seconds: float, fresh_seconds: float = 3.0) -> None:
        dsn = postgres_dsn()
        if ttl_seconds <= 0 or dsn is None or self.enabled:
            return
        self._ttl = ttl_seconds
        self._fresh = fresh_seconds
        self._conn = await asyncpg.connect(dsn)
        await self._conn.add_listener(SCORES_CHANNEL, self._on_scores)
        await self._conn.add_listener(REGISTRY_CHANNEL, self._on_registry)
        self._conn.add_termination_listener(lambda _: self.forget(None))

    async def stop(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None
        self.forget(None)

    def forget(self, periods: set[str] | None) -> None:
        """Mark the ladders that rank any of ``periods`` changed (None: drop every
        ladder)."""
        if periods is None:
            self._generation += 1
            self._kept.clear()
            self._cards.clear()
            return
        now = time.monotonic()
        for period in periods:
            self._changed[period] = now
        for kept in self._kept.values():
            if kept.changed is None and not kept.periods.isdisjoint(periods):
                kept.changed = now

    def _on_scores(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.forget(None if payload == "*" else set(payload.split(",")))

    def _on_registry(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self.forget(None)

    async def cards(
        self,
        kind: str,
        ids: Iterable[int],
        read: Callable[[list[int]], Awaitable[dict[int, dict[str, Any]]]],
    ) -> dict[int, dict[str, Any]]:
        """The cards (``kind``: advisor or store) of ``ids``, those not kept read by
        ``read``. For what a table shows only: a write reads the registry itself."""
        wanted = set(ids)
        if not self.enabled:
            return await read(sorted(wanted))
        kept = self._cards.setdefault(kind, {})
        missing = sorted(wanted - kept.keys())
        if not missing:
            return {i: kept[i] for i in wanted}
        seen = self._generation
        found = await read(missing)
        if seen == self._generation and self.enabled:
            if len(kept) > MAX_CARDS:
                kept.clear()
            kept.update(found)
        return {**{i: kept[i] for i in wanted if i in kept}, **found}

    async def get(
        self, key: Hashable, periods: Iterable[str], rank: Callable[[], Awaitable[Ladder]]
    ) -> Ladder | None:
        """The ladder kept under ``key``, ranked by ``rank`` when there is none or it
        has been changed for longer than ``fresh_seconds``; None when nothing is kept
        (the caller ranks in SQL)."""
        if not self.enabled:
            return None
        now = time.monotonic()
        kept = self._kept.pop(key, None)
        if kept is not None and kept.expires > now:
            self._kept[key] = kept  # the most recently used last: the first to go is the oldest
            if kept.changed is None or now - kept.changed < self._fresh or key in self._building:
                return kept.ladder  # (being ranked again: the kept one meanwhile)
        pending = self._building.get(key)
        if pending is not None:  # one ranking at a time however many callers wait
            return await asyncio.shield(pending)
        return await self._rank(key, frozenset(periods), rank, now)

    async def _rank(
        self,
        key: Hashable,
        periods: frozenset[str],
        rank: Callable[[], Awaitable[Ladder]],
        now: float,
    ) -> Ladder:
        future: asyncio.Future[Ladder] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        seen = self._generation
        try:
            ladder = await rank()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters, if any, get it raised
            raise
        finally:
            self._building.pop(key, None)
        future.set_result(ladder)
        if seen != self._generation or not self.enabled or len(ladder) > MAX_LINES:
            return ladder
        # A score change while it was ranked: kept, but already changed as of then.
        changed = now if any(self._changed.get(p, 0.0) >= now for p in periods) else None
        self._kept.pop(key, None)
        kept_lines = sum(len(k.ladder) for k in self._kept.values())
        while self._kept and kept_lines + len(ladder) > MAX_LINES:  # the oldest go
            kept_lines -= len(self._kept.pop(next(iter(self._kept))).ladder)
        self._kept[key] = _Kept(ladder, periods, now + self._ttl, changed)
        return ladder


LADDERS = Ladders()


async def period_ladder(subject: Subject, scope: Scope, period: str) -> Ladder | None:
    """The scope's lines of one period by the default weights, ranked (None: not kept)."""

    async def rank() -> Ladder:
        return Ladder.of(with_ranks(await scope_lines(subject, scope, period)))

    return await LADDERS.get(("lines", subject.name, scope.text, period), [period], rank)


async def rank_all_kept(
    subject: Subject,
    scope: Scope,
    periods: list[str],
    weights: Weights,
    limit: int,
    also: list[int],
    per_advisor: bool = False,
) -> tuple[list[Ranked], dict[int, Ranked]]:
    """``ranking.rank_all`` answered from a kept ladder of everyone it ranks."""
    values = tuple(weights.of(kind) for kind in KINDS)
    key = ("all", subject.name, scope.text, tuple(periods), values, per_advisor)

    async def rank() -> Ladder:
        return Ladder.of(await rank_everyone(subject, scope, periods, weights, per_advisor))

    ladder = await LADDERS.get(key, periods, rank)
    if ladder is None:
        return await rank_all(subject, scope, periods, weights, limit, also, per_advisor)
    return ladder.top(limit), ladder.lines_of(also)
