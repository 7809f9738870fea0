"""The one clock of the domain.

Every "now" and "today" a store, a task, a period or a push sees comes from here.
``TIANTIAN_NOW`` freezes it at an instant (a test clock for demos, tests and
replays of history); logins and tokens keep the real clock and do not call this.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"


@lru_cache(maxsize=8)
def _parse_test_clock(value: str) -> datetime:
    instant = datetime.fromisoformat(value)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
    return instant.astimezone(UTC)


# A replay of history (the demo chain's past) lives each day at that day's time.
_replaying: ContextVar[datetime | None] = ContextVar("replaying", default=None)


@contextmanager
def living_at(instant: datetime) -> Iterator[None]:
    """Within the block, "now" is ``instant`` (for this task and what it awaits)."""
    token = _replaying.set(instant.astimezone(UTC))
    try:
        yield
    finally:
        _replaying.reset(token)


def now() -> datetime:
    """The domain's current instant, timezone-aware, in UTC."""
    replayed = _replaying.get()
    if replayed is not None:
        return replayed
    frozen = os.environ.get("TIANTIAN_NOW")
    if frozen:
        return _parse_test_clock(frozen)
    return datetime.now(UTC)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_valid_timezone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_date(instant: datetime, tz: tzinfo) -> date:
    """The calendar day an instant falls on for a store in ``tz``. Raises ValueError
    for an instant at the very edge of the calendar."""
    try:
        return instant.astimezone(tz).date()
    except OverflowError:
        raise ValueError("is out of range") from None


def today(tz: tzinfo) -> date:
    return local_date(now(), tz)


def as_instant(value: datetime, tz: tzinfo) -> datetime:
    """An aware UTC instant; a time without an offset is read in the store's zone.
    Raises ValueError for a time that cannot be placed on the UTC line."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants a store-local calendar day starts and ends at."""
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def as_date(value: object) -> date:
    """A date column as read back: a ``date`` from the drivers, or its ISO text where
    SQLite hands back an expression's value."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def as_datetime(value: object) -> datetime:
    """A timestamp column as read back: a ``datetime``, or its ISO text where SQLite
    hands back an expression's value."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
