"""Points in lots: what a member earns in a month is one lot, expiring at the end of
the month ``expiry_months`` later (the policy in force when it was booked). Spending
and reversals take the oldest lots first; the daily job books what lapsed. Every step
is one statement over the lots concerned, so a member's balance always equals their
lots' remaining points and the ledger's sum.

The settlement's month for a ledger row is its own month, unless that month's
settlement was frozen by the close before the row was written: then the month it was
written in (an adjustment, never an edit of a frozen line)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from core import clock
from core.db import (
    days_after,
    fetch,
    greatest,
    hold_books,
    in_write_transaction,
    least,
    rows_source,
)
from core.periods import month_key, next_month
from members.policy import Policy

REMAINING = "(earned - used - expired)"


async def settled_months(since: str) -> set[str]:
    rows = await fetch("SELECT month FROM settled_month WHERE month >= {}", since)
    return {str(r["month"]) for r in rows}


def booked(month: str, settled: set[str]) -> str:
    """A row of a settled month goes into the first month after it still open."""
    while month in settled:
        month = next_month(month)
    return month


async def booking_months(days: Sequence[date]) -> dict[date, str]:
    """The settlement month each day's ledger rows go into. Takes the books' lock
    (shared): a close cannot freeze a month between this answer and the commit."""
    await hold_books()
    if not days:
        return {}
    settled = await settled_months(month_key(min(days)))
    return {d: booked(month_key(d), settled) for d in set(days)}


def _booked_sql(month: str, settled: set[str]) -> tuple[str, list[Any]]:
    """``booked`` in SQL over a month expression, for a set-based insert."""
    if not settled:
        return month, []
    cases = sorted(settled)
    sql = "CASE" + " WHEN {m} = {{}} THEN {{}}" * len(cases) + " ELSE {m} END"
    return sql.format(m=month), [v for m in cases for v in (m, booked(m, settled))]


async def add_to_lots(earned: Sequence[tuple[int, int, date]], policy: Policy) -> None:
    """Earnings (member, points, store-local day) into their month's lot."""
    lots: dict[tuple[int, str, date], int] = defaultdict(int)
    for member_id, points, day in earned:
        if points > 0:
            lots[(member_id, month_key(day), policy.expires_on(day))] += points
    if not lots:
        return
    source, args = rows_source(
        [("member", "bigint"), ("month", "text"), ("expires_on", "date"), ("earned", "int")],
        [(*key, points) for key, points in sorted(lots.items())],
    )
    # In key order: two batches adding to the same lots queue rather than deadlock.
    await fetch(
        "INSERT INTO points_lot (member, month, expires_on, earned, used, expired)"
        f" SELECT member, month, expires_on, earned, 0, 0 FROM ({source}) AS src WHERE true"
        " ORDER BY member, month, expires_on ON CONFLICT (member, month, expires_on)"
        " DO UPDATE SET earned = points_lot.earned + excluded.earned",
        *args,
    )


async def take_oldest(member_id: int, points: int, today: date) -> int:
    """Take up to ``points`` from the member's lots still valid ``today``, the soonest
    to lapse first. Returns how many were taken (less only if the lots ran out)."""
    if points <= 0:
        return 0
    valid = "member = {} AND earned > used + expired AND expires_on >= {}"
    left = await fetch(
        f"SELECT COALESCE(SUM({REMAINING}), 0) AS n FROM points_lot WHERE {valid}", member_id, today
    )
    taken = min(points, int(left[0]["n"]))
    before = f"(SUM({REMAINING}) OVER (ORDER BY expires_on, id) - {REMAINING})"
    await fetch(
        f"UPDATE points_lot SET used = used + x.take FROM (SELECT id,"
        f" {least(REMAINING, greatest('0', f'{{}} - {before}'))} AS take FROM points_lot"
        f" WHERE {valid}) AS x WHERE points_lot.id = x.id AND x.take > 0",
        taken,
        member_id,
        today,
    )
    return taken


def _lapsed(where: str) -> str:
    """Lots with points left whose last day is before the first placeholder's day."""
    return (
        f"SELECT l.id, l.member, l.expires_on, {REMAINING} AS points FROM points_lot l"
        f" WHERE l.earned > l.used + l.expired AND l.expires_on < {{}}{where}"
    )


async def expire(day: date, where: str, args: Sequence[Any]) -> int:
    """Book every lot (of the members ``where`` picks, on ``l.member``) that lapsed
    before ``day``: a ledger row at the member's home store on the day after its
    last, the balance and the lot brought down. Returns the points expired."""
    await hold_books()
    lapsed, lapsed_args = _lapsed(where), [day, *args]
    on = days_after("x.expires_on", 1)
    # Rows of a month already settled go into the next open one: an adjustment.
    month, month_args = _booked_sql(
        f"substr(CAST({on} AS text), 1, 7)", await settled_months("0000-00")
    )
    rows = await fetch(
        "INSERT INTO points_ledger (member, store, kind, points, lot, bonus_points,"
        " occurred_at, occurred_on, booked_month, created_at)"
        f" SELECT x.member, m.home_store, 'expire', -x.points, x.id, 0, {{}}, {on},"
        f" {month}, {{}} FROM ({lapsed}) AS x JOIN member m ON m.id = x.member RETURNING points",
        clock.now(),
        *month_args,
        clock.now(),
        *lapsed_args,
    )
    if not rows:
        return 0
    await fetch(
        "UPDATE member SET points_balance = points_balance - x.points FROM (SELECT member,"
        f" SUM(points) AS points FROM ({lapsed}) AS y GROUP BY member) AS x"
        " WHERE member.id = x.member",
        *lapsed_args,
    )
    await fetch(
        f"UPDATE points_lot SET expired = expired + {REMAINING} WHERE id IN"
        f" (SELECT id FROM ({lapsed}) AS y)",
        *lapsed_args,
    )
    return -sum(int(r["points"]) for r in rows)


async def expire_zone(day: date, timezone: str) -> int:
    """The daily job's pass: lots of members whose home store keeps ``timezone``."""
    in_zone = (
        " AND l.member IN (SELECT id FROM member WHERE home_store IN"
        " (SELECT id FROM store WHERE timezone = {}))"
    )
    return await expire(day, in_zone, [timezone])


async def expire_member(member_id: int, today: date) -> int:
    """One member's lapsed lots, before their points are spent or taken back."""
    return await expire(today, " AND l.member = {}", [member_id])


async def lots_of(member_id: int, today: date) -> list[tuple[int, date]]:
    """(points left, last day) of each lot still valid, the soonest first."""
    rows = await fetch(
        f"SELECT {REMAINING} AS points, expires_on FROM points_lot WHERE member = {{}}"
        " AND earned > used + expired AND expires_on >= {} ORDER BY expires_on, id",
        member_id,
        today,
    )
    return [(int(r["points"]), clock.as_date(r["expires_on"])) for r in rows]


async def expire_points(day: date, timezone: str) -> int:
    """The daily job's expiry pass for a zone, in a transaction of its own."""
    return await in_write_transaction(lambda: expire_zone(day, timezone))
