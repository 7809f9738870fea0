"""The members' side of insights: members, recruits, activity, receipts, revenue and
RN3 for a scope and period, whole or split by region or store. Read off the
summaries (``store_day`` by period, ``store_activity`` by day), never the purchases:
a national month is a few thousand summary rows whatever the chain's size."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.db import fetch, in_list, rows_source
from core.periods import Period
from members.queries import STORES
from members.scopes import Scope, store_filter

SPLITS = ("region", "store")
SALES = ("receipts", "revenue_fen", "repeat_fen", "new_members")
ACTIVITY = ("members", "active_3m", "active_12m")
FIGURES = (*ACTIVITY, *SALES)
TOTAL = ""  # the key of the whole scope's line


def key_column(by: str | None, store: str = "s") -> str:
    """The column a figure is grouped by: a region's name, a store's code, or one line."""
    if by == "region":
        return f"{store}.region"
    if by == "store":
        return f"{store}.code"
    return "''"


def grouped(by: str | None, *first: str) -> str:
    """The GROUP BY clause for ``first`` and the split's key (a constant is no group)."""
    columns = [*first, key_column(by)] if by else list(first)
    return f" GROUP BY {', '.join(columns)}" if columns else ""


@dataclass(slots=True)
class MemberFigures:
    as_of: date | None  # the activity snapshot's day; None before the first
    lines: dict[str, dict[str, int]] = field(default_factory=dict)

    def line(self, key: str) -> dict[str, int]:
        return self.lines.setdefault(key, dict.fromkeys(FIGURES, 0))


async def zone_days(last: date) -> dict[str, date]:
    """Per time zone, its latest snapshot on or before ``last``. The daily job snaps a
    zone's stores together after that zone's midnight, so a zone whose day has not
    ended yet answers with the day before, never with nothing; its oldest store (which
    has every snapshot of the zone since) is asked, through the (store, day) index."""
    days: dict[str, date] = {}
    for zone in await fetch("SELECT timezone, MIN(id) AS store FROM store GROUP BY timezone"):
        rows = await fetch(
            "SELECT MAX(day) AS day FROM store_activity WHERE store = {} AND day <= {}",
            zone["store"],
            last,
        )
        if rows and rows[0]["day"] is not None:
            days[str(zone["timezone"])] = date.fromisoformat(str(rows[0]["day"])[:10])
    return days


async def activity_as_of(last: date) -> date | None:
    """The latest snapshot day on or before ``last`` (of any zone)."""
    days = await zone_days(last)
    return max(days.values()) if days else None


def _on_zone_days(days: dict[str, date]) -> tuple[str, list[Any]]:
    """A join keeping each store's snapshot of its zone's day."""
    source, args = rows_source([("timezone", "text"), ("day", "date")], sorted(days.items()))
    return f" JOIN ({source}) AS z ON z.timezone = s.timezone AND a.day = z.day", args


async def _activity(scope: Scope, days: dict[str, date], by: str | None) -> list[dict[str, Any]]:
    where, args = store_filter(scope, "s.id")
    join, join_args = _on_zone_days(days)
    sums = ", ".join(f"SUM(a.{f}) AS {f}" for f in ACTIVITY)
    return await fetch(
        f"SELECT {key_column(by)} AS key, {sums} FROM store_activity a"
        f" JOIN {STORES} s ON s.id = a.store{join} WHERE true{where}{grouped(by)}",
        *join_args,
        *args,
    )


async def member_figures(scope: Scope, period: Period, by: str | None) -> MemberFigures:
    """Each line of the split (or the one line, keyed ``""``) with every figure."""
    key = key_column(by)
    where, args = store_filter(scope, "s.id")
    days = await zone_days(period.last)
    found = MemberFigures(max(days.values()) if days else None)
    sums = ", ".join(f"SUM(d.{f}) AS {f}" for f in SALES)
    for row in await fetch(
        f"SELECT {key} AS key, {sums} FROM store_day d JOIN {STORES} s ON s.id = d.store"
        f" WHERE d.period = {{}}{where}{grouped(by)}",
        period.name,
        *args,
    ):
        found.line(str(row["key"])).update({f: int(row[f] or 0) for f in SALES})
    if days:
        for row in await _activity(scope, days, by):
            found.line(str(row["key"])).update({f: int(row[f] or 0) for f in ACTIVITY})
    return found


async def activity_trend(scope: Scope, days: list[date]) -> dict[date, dict[str, int]]:
    """The scope's members and active members at each of ``days`` (each zone's latest
    snapshot on or before it), for the days that have one."""
    trend: dict[date, dict[str, int]] = {}
    for day in days:
        zones = await zone_days(day)
        if zones:
            row = (await _activity(scope, zones, None))[0]
            trend[day] = {f: int(row[f] or 0) for f in ACTIVITY}
    return trend


async def sales_trend(scope: Scope, periods: list[str]) -> dict[str, dict[str, int]]:
    """The scope's receipts, revenue, repeat revenue and recruits in each of ``periods``."""
    if not periods:
        return {}
    where, args = store_filter(scope, "d.store")
    periods_in, period_args = in_list(periods, "text")
    sums = ", ".join(f"SUM(d.{f}) AS {f}" for f in SALES)
    return {
        str(row["period"]): {f: int(row[f] or 0) for f in SALES}
        for row in await fetch(
            f"SELECT d.period, {sums} FROM store_day d WHERE d.period {periods_in}{where}"
            " GROUP BY d.period",
            *period_args,
            *args,
        )
    }
