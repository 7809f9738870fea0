"""How many members a store has, and how many of them are active, as of a day's end:
the 3-month and annual active members the program is steered by. A snapshot per
store and day, taken by the daily job for the day just ended (and for the month ends
of the past year it has none of), one grouped statement per time zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from functools import partial

from core.db import fetch, in_write_transaction, insert_count, param

ACTIVE_3M_DAYS = 90
ACTIVE_12M_DAYS = 365
BACKFILL_MONTHS = 12


def _active(start: str) -> str:
    """1 for a member who bought from ``start`` to the snapshot's day ``x.d``. The
    latest purchase answers for almost everyone; only a member who has bought since
    is looked up in their purchases."""
    return (
        f"CASE WHEN m.last_purchase_on >= {start} AND m.last_purchase_on <= x.d THEN 1"
        " WHEN m.last_purchase_on > x.d AND EXISTS (SELECT 1 FROM purchase p"
        f" WHERE p.member = m.id AND p.purchased_on >= {start} AND p.purchased_on <= x.d)"
        " THEN 1 ELSE 0 END"
    )


async def take_snapshot(day: date, timezone: str) -> int:
    """The snapshot of ``day`` for every store in ``timezone`` (taken again if there is
    one: a late receipt may have changed it). Returns the stores written."""
    on = param("date")
    return await insert_count(
        "INSERT INTO store_activity (store, day, members, active_3m, active_12m)"
        f" SELECT s.id, x.d, COUNT(m.id), COALESCE(SUM({_active('x.s3')}), 0),"
        f" COALESCE(SUM({_active('x.s12')}), 0)"
        f" FROM (SELECT {on} AS d, {on} AS s3, {on} AS s12) AS x"
        " JOIN store s ON s.timezone = {}"
        " LEFT JOIN member m ON m.home_store = s.id AND m.joined_on <= x.d"
        " WHERE true GROUP BY s.id, x.d"
        " ON CONFLICT (store, day) DO UPDATE SET members = excluded.members,"
        " active_3m = excluded.active_3m, active_12m = excluded.active_12m",
        day,
        day - timedelta(days=ACTIVE_3M_DAYS - 1),
        day - timedelta(days=ACTIVE_12M_DAYS - 1),
        timezone,
    )


def month_ends_before(day: date, months: int = BACKFILL_MONTHS) -> list[date]:
    ends = []
    end = day.replace(day=1) - timedelta(days=1)
    for _ in range(months):
        ends.append(end)
        end = end.replace(day=1) - timedelta(days=1)
    return ends


async def missing_days(days: Sequence[date], timezone: str) -> list[date]:
    """Those of ``days`` with no snapshot yet for the zone's stores."""
    if not days:
        return []
    taken = {
        str(row["day"])
        for row in await fetch(
            "SELECT DISTINCT a.day FROM store_activity a JOIN store s ON s.id = a.store"
            " WHERE s.timezone = {} AND a.day >= {}",
            timezone,
            min(days),
        )
    }
    return [d for d in days if d.isoformat() not in taken]


async def take_snapshots(today: date, timezone: str) -> int:
    """Yesterday's snapshot, and the past year's month ends the zone has none of."""
    yesterday = today - timedelta(days=1)
    days = [yesterday, *await missing_days(month_ends_before(today), timezone)]
    made = 0
    for day in sorted(set(days)):
        made += await in_write_transaction(partial(take_snapshot, day, timezone))
    return made
