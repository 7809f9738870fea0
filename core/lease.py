"""Which of several processes acts: a lease on a PostgreSQL session advisory lock,
held on a connection of its own. The holder acts; the others stand by and try again,
taking over when the holder dies (its connection, and so its lock, goes with it).
SQLite is one machine's database: there the lease is an exclusive lock on a file
beside it, which the kernel gives back when its process dies, so several workers on
one machine still have one scheduler that acts."""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import IO, Any

import asyncpg

from core import metrics
from core.db import postgres_dsn, sqlite_path

log = logging.getLogger("tiantian.scheduler")

LEASE_KEY = 0x7469616E  # "tian": the advisory lock every Tiantian scheduler competes for


class Leadership:
    """Whether this process's scheduler is the one that acts."""

    def __init__(self) -> None:
        self._dsn = postgres_dsn()
        self._conn: Any = None
        self._file: IO[bytes] | None = None
        self.leader = False

    def _check_file(self) -> bool:
        if self._file is not None:
            return True
        path = Path(f"{sqlite_path()}.scheduler-lease")
        handle = path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        log.info("this scheduler holds the lease and acts")
        return True

    async def check(self) -> bool:
        if self._dsn is None:
            self.leader = self._check_file()
            metrics.SCHEDULER_LEADER.set(1 if self.leader else 0)
            return self.leader
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn)
                self.leader = False
            if not self.leader:
                self.leader = bool(
                    await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LEASE_KEY)
                )
                if self.leader:
                    log.info("this scheduler holds the lease and acts")
            else:
                # Still holding it? A connection the server dropped took the lock with
                # it, and another scheduler may act by now.
                held = await self._conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid() AND objid = $1::bigint::oid AND granted)",
                    LEASE_KEY,
                )
                if not held:
                    log.warning("this scheduler lost the lease: standing by")
                    self.leader = False
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("scheduler lease unavailable: %s", exc)
            self.leader = False
            self._conn = None
        metrics.SCHEDULER_LEADER.set(1 if self.leader else 0)
        return self.leader

    async def release(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None
        if self._file is not None:
            self._file.close()  # closing the file gives the lock back
            self._file = None
        self.leader = False
        metrics.SCHEDULER_LEADER.set(0)
