"""Database helpers shared by every domain: write transactions that behave the same
on SQLite and PostgreSQL, and set-based row sources for bulk statements."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

log = logging.getLogger("tiantian.db")
T = TypeVar("T")
Row = dict[str, Any]

# How many times a transaction that lost a race (a unique key taken by a concurrent
# writer, a deadlock, a serialization failure) is run again from the start.
RETRIES = 5


def engine() -> Engine:  # type: ignore[type-arg]
    """The engine ``piccolo_conf`` made from ``DATABASE_URL``: the one every table uses."""
    import piccolo_conf

    db: Engine = piccolo_conf.DB  # type: ignore[type-arg]
    return db


def is_postgres() -> bool:
    return isinstance(engine(), PostgresEngine)


def sqlite_path() -> str | None:
    """The SQLite database file; None on PostgreSQL."""
    db = engine()
    return str(db.path) if isinstance(db, SQLiteEngine) else None


def postgres_dsn() -> str | None:
    """The PostgreSQL connection string, for a connection of one's own (a lease, a
    listener); None on SQLite."""
    db = engine()
    return str(db.config["dsn"]) if isinstance(db, PostgresEngine) else None


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """A transaction for a business event.

    On SQLite it is ``BEGIN IMMEDIATE``: the write lock is taken at the start, so two
    writers queue on the busy timeout instead of one failing with "database is
    locked" when it upgrades from reading to writing.
    """
    db = engine()
    if isinstance(db, SQLiteEngine):
        async with db.transaction(transaction_type=TransactionType.immediate):
            yield
    else:
        transaction = db.transaction()
        try:
            async with transaction:
                yield
        except BaseException:
            _put_down(db, transaction)
            raise


def _put_down(db: Any, transaction: Any) -> None:
    """Piccolo keeps a transaction as the task's current one until its rollback or
    commit returns; when that raised (the connection died under it), the dead
    transaction stayed current and every retry in the task ran in it. Forget it,
    and let its connection go (the pool opens a fresh one)."""
    if transaction._parent is None and db.current_transaction.get() is transaction:
        db.current_transaction.reset(transaction.context)
        with suppress(Exception):  # already closed and handed back: nothing to do
            transaction.connection.terminate()


class LostRace(Exception):
    """A concurrent writer got there first; run the whole event again."""


def connection_lost(exc: BaseException) -> bool:
    """The database connection went away (a restart, a failover, a killed backend):
    nothing of the transaction was kept, and a fresh connection may work."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    # 08…: connection exceptions; 57P01–57P03: the server shut down or is starting.
    if sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}:
        return True
    name = type(exc).__name__
    return isinstance(exc, ConnectionError | TimeoutError) or name in {
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "InternalClientError",
    }


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, LostRace):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    # 40001 serialization_failure, 40P01 deadlock_detected
    return sqlstate in {"40001", "40P01"} or connection_lost(exc)


@dataclass
class _Deferred:
    items: dict[str, list[Any]] = field(default_factory=dict)
    flushers: dict[str, Callable[[list[Any]], Awaitable[object]]] = field(default_factory=dict)
    after: list[Callable[[], None]] = field(default_factory=list)


_deferred: ContextVar[_Deferred | None] = ContextVar("tiantian_deferred", default=None)


def defer(key: str, items: Sequence[Any], flush: Callable[[list[Any]], Awaitable[object]]) -> bool:
    """Queue ``items`` to be written by ``flush`` once, just before the current write
    transaction commits, together with everything else queued under ``key`` by then.
    One event touches the same summary rows from several listeners; writing them in
    one statement, in key order, means two events lock them in one order and cannot
    deadlock. Returns False (and queues nothing) outside ``in_write_transaction``."""
    pending = _deferred.get()
    if pending is None:
        return False
    pending.items.setdefault(key, []).extend(items)
    pending.flushers[key] = flush
    return True


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current write transaction has committed (at once
    outside one): a counter of what was written moves only if it was written, and
    once however often the transaction was retried."""
    pending = _deferred.get()
    if pending is None:
        callback()
    else:
        pending.after.append(callback)


async def _flush(pending: _Deferred) -> None:
    while pending.items:
        key = next(iter(pending.items))
        items = pending.items.pop(key)
        await pending.flushers[key](items)


async def in_write_transaction(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in one write transaction, again from the start if it lost a race."""
    for attempt in range(RETRIES):
        pending = _Deferred()
        try:
            async with write_transaction():
                token = _deferred.set(pending)
                try:
                    result = await work()
                    await _flush(pending)
                finally:
                    _deferred.reset(token)
        except Exception as exc:
            if not _is_retryable(exc) or attempt == RETRIES - 1:
                raise
            log.info("transaction retried after %s", type(exc).__name__)
            await asyncio.sleep(0.005 * (attempt + 1) + (0.2 if connection_lost(exc) else 0))
            continue
        for callback in pending.after:
            callback()
        return result
    raise AssertionError("unreachable")


# Where the time of a unit of work goes, statement by statement: the benches set a
# list here and read (statement, seconds) pairs back; None (always, in the service)
# costs one lookup per statement.
_profile: ContextVar[list[tuple[str, float]] | None] = ContextVar("tiantian_profile", default=None)


@asynccontextmanager
async def statement_times() -> AsyncIterator[list[tuple[str, float]]]:
    """Collect each ``fetch``'s SQL and wall time inside the block (for the benches)."""
    found: list[tuple[str, float]] = []
    token = _profile.set(found)
    try:
        yield found
    finally:
        _profile.reset(token)


async def fetch(sql: str, *args: Any) -> list[Row]:
    """Raw SQL with ``{}`` placeholders, inside the current transaction if any."""
    db = engine()
    timed = _profile.get()
    started = time.perf_counter() if timed is not None else 0.0
    response = await db.run_querystring(QueryString(sql, *args))
    rows: list[Row] = db.transform_response_to_dicts(response) if response else []
    if timed is not None:
        timed.append((sql, time.perf_counter() - started))
    return rows


def _sqlite_value(value: Any) -> Any:
    # The same text forms Piccolo's SQLite adapters write, so that rows inserted in
    # bulk compare equal to rows inserted through the ORM.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def rows_source(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """A ``SELECT`` yielding ``rows`` as a relation with the named columns.

    ``columns`` are ``(name, postgres_type)`` pairs. PostgreSQL gets one array per
    column through ``unnest``; SQLite one JSON document through ``json_each``. Either
    way a batch is one statement with a fixed number of parameters, however many rows.
    """
    names = ", ".join(name for name, _ in columns)
    if is_postgres():
        arrays = ", ".join(f"{{}}::{pg_type}[]" for _, pg_type in columns)
        args: list[Any] = [[row[i] for row in rows] for i in range(len(columns))]
        return f"SELECT * FROM unnest({arrays}) AS r({names})", args
    picks = ", ".join(
        f"json_extract(value, '$[{i}]') AS {name}" for i, (name, _) in enumerate(columns)
    )
    document = json.dumps([[_sqlite_value(v) for v in row] for row in rows], ensure_ascii=False)
    return f"SELECT {picks} FROM json_each({{}})", [document]


def in_list(values: Sequence[Any], pg_type: str) -> tuple[str, list[Any]]:
    """``= ANY(array)`` on PostgreSQL, ``IN (SELECT value FROM json_each(?))`` on SQLite:
    one parameter for any number of values."""
    if is_postgres():
        return f"= ANY({{}}::{pg_type}[])", [list(values)]
    document = json.dumps([_sqlite_value(v) for v in values], ensure_ascii=False)
    return "IN (SELECT value FROM json_each({}))", [document]


def days_between(later: str, earlier: str) -> str:
    """Whole days from one date expression to another, on either database."""
    if is_postgres():
        return f"({later} - {earlier})"
    return f"(julianday({later}) - julianday({earlier}))"


def days_after(day: str, n: int) -> str:
    """The date expression ``n`` days after ``day``, on either database."""
    if is_postgres():
        return f"({day} + {int(n)})"
    return f"date({day}, '{int(n):+d} days')"


def least(a: str, b: str) -> str:
    """The smaller of two expressions (SQLite's two-argument MIN)."""
    return f"LEAST({a}, {b})" if is_postgres() else f"MIN({a}, {b})"


def greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if is_postgres() else f"MAX({a}, {b})"


def param(pg_type: str) -> str:
    """A placeholder whose type PostgreSQL cannot infer from context (a bare value in a
    SELECT list); SQLite takes the value as it comes."""
    return f"{{}}::{pg_type}" if is_postgres() else "{}"


async def _keep_session(_: Any) -> None:
    """Hand a connection back to the pool as it is. asyncpg's default reset costs a
    round trip per query (RESET ALL, UNLISTEN, unlock all); nothing here changes
    session state on a pooled connection (the scheduler's lease has its own)."""


class DatabaseRefused(ConnectionError):
    """The database would not open a new connection for now."""


# PostgreSQL refusing a new connection for a while: the database not accepting
# connections (ALLOW_CONNECTIONS false), every connection slot taken.
_REFUSALS = {"55000", "53300"}


async def _connect(*args: Any, **kwargs: Any) -> Any:
    """The pool's new connections; a passing refusal is a lost connection to callers
    (a 503 with Retry-After, a transaction tried again), not an error of their own.

    JIT compilation is off for them: the service's statements run in milliseconds, and
    a plan whose estimate crosses ``jit_above_cost`` (a league table's sums over a
    scope, a batch's upsert) spent more compiling (~80 ms seen) than executing."""
    settings = {**(kwargs.pop("server_settings", None) or {}), "jit": "off"}
    try:
        return await asyncpg.connect(*args, server_settings=settings, **kwargs)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate in _REFUSALS:
            raise DatabaseRefused(f"{exc.sqlstate}: {exc}") from exc
        raise


@asynccontextmanager
async def connection_pool(max_size: int = 20) -> AsyncIterator[None]:
    """Open PostgreSQL's pool for the life of a process (SQLite needs none)."""
    db = engine()
    if not isinstance(db, PostgresEngine):
        yield
        return
    await db.start_connection_pool(
        min_size=1, max_size=max_size, reset=_keep_session, connect=_connect
    )
    try:
        yield
    finally:
        await db.close_connection_pool()


async def insert_count(sql: str, *args: Any) -> int:
    """Run an INSERT and count the rows it made, without shipping them back."""
    if is_postgres():
        rows = await fetch(
            f"WITH made AS ({sql} RETURNING 1) SELECT COUNT(*) AS n FROM made", *args
        )
        return int(rows[0]["n"])
    return len(await fetch(f"{sql} RETURNING 1", *args))


async def count_changed(sql: str, *args: Any, ctes: str = "") -> int:
    """Run an INSERT, UPDATE or DELETE after the common table expressions ``ctes``
    (their arguments first) and count the rows it changed, without shipping them back."""
    if is_postgres():
        head = f"WITH {ctes}, " if ctes else "WITH "
        rows = await fetch(
            f"{head}changed AS ({sql} RETURNING 1) SELECT COUNT(*) AS n FROM changed", *args
        )
        return int(rows[0]["n"])
    head = f"WITH {ctes} " if ctes else ""
    return len(await fetch(f"{head}{sql} RETURNING 1", *args))


async def database_answers() -> bool:
    """Whether the database answers a trivial query now."""
    try:
        await fetch("SELECT 1 AS ok")
    except Exception:  # any failure to reach the database is the answer itself
        return False
    return True


async def rows_by(
    key: str, sql: str, ids: Sequence[Any], pg_type: str = "bigint"
) -> dict[Any, list[Row]]:
    """The rows of ``sql`` for ``ids``, grouped by their ``key`` column: the children
    of a page of parents in one query. ``{ids}`` in ``sql`` stands where the ids are
    matched: ``"… WHERE l.purchase {ids} ORDER BY l.line_no"``."""
    grouped: dict[Any, list[Row]] = {}
    if not ids:
        return grouped
    cond, args = in_list(list(ids), pg_type)
    for row in await fetch(sql.replace("{ids}", cond), *args):
        grouped.setdefault(row[key], []).append(row)
    return grouped


_migrations_current = False


async def migrations_behind() -> int:
    """How many known migrations the database has not applied. Once it is current it
    stays so for the life of a process (new migrations come with a new release)."""
    global _migrations_current
    if _migrations_current:
        return 0
    from piccolo.apps.migrations.commands.check import CheckMigrationManager

    try:
        behind = int(await CheckMigrationManager("all").havent_ran_count())
    except Exception:  # unreadable: not ready, whatever the reason
        return -1
    _migrations_current = behind == 0
    return behind


# The books: the score ledger and the points ledger. Writers of either share the lock
# for their transaction; closing a month holds it alone, so that a fact is either in
# the month it froze or booked after it, never lost between the two.
BOOKS_LOCK = 0x7449_414E  # "tIAN"


class BooksBusy(Exception):
    """The books' lock was not had alone within the time given; the transaction that
    asked is spoilt (roll it back)."""


async def hold_books(alone: bool = False, within: float | None = None) -> None:
    """Take the books' lock for the rest of the transaction (PostgreSQL; SQLite has
    one writer at a time anyway). ``within``: wait for it alone at most that many
    seconds, then raise ``BooksBusy``: writers that came after this request queue
    behind it, so a request that gives up soon keeps their wait short."""
    if not is_postgres():
        return
    kind = "" if alone else "_shared"
    if within is None:
        await fetch(f"SELECT pg_advisory_xact_lock{kind}({{}}::bigint)", BOOKS_LOCK)
        return
    await fetch("SELECT set_config('lock_timeout', {}, true)", f"{max(1, int(within * 1000))}ms")
    try:
        await fetch(f"SELECT pg_advisory_xact_lock{kind}({{}}::bigint)", BOOKS_LOCK)
    except asyncpg.exceptions.LockNotAvailableError as exc:
        raise BooksBusy(f"the books stayed busy for {within:.2f} s") from exc
    await fetch("SET LOCAL lock_timeout TO DEFAULT")
