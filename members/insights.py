"""The members' side of insights: members, recruits, activity, receipts, revenue and
RN3 for a scope and period, whole or split by region or store. Read off the
summaries (``store_day`` by period, ``store_activity`` by day), never the purchases:
a national month is a few thousand summary rows whatever the chain's size."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from core.db import fetch, in_list
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


async def activity_as_of(last: date) -> date | None:
    """The latest snapshot on or before a period's last day."""
    rows = await fetch("SELECT MAX(day) AS day FROM store_activity WHERE day <= {}", last)
    found = rows[0]["day"] if rows else None
    return date.fromisoformat(str(found)[:10]) if found is not None else None


async def member_figures(scope: Scope, period: Period, by: str | None) -> MemberFigures:
    """Each line of the split (or the one line, keyed ``""``) with every figure."""
    key = key_column(by)
    where, args = store_filter(scope, "s.id")
    found = MemberFigures(await activity_as_of(period.last))
    sums = ", ".join(f"SUM(d.{f}) AS {f}" for f in SALES)
    for row in await fetch(
        f"SELECT {key} AS key, {sums} FROM store_day d JOIN {STORES} s ON s.id = d.store"
        f" WHERE d.period = {{}}{where}{grouped(by)}",
        period.name,
        *args,
    ):
        found.line(str(row["key"])).update({f: int(row[f] or 0) for f in SALES})
    if found.as_of is not None:
        sums = ", ".join(f"SUM(a.{f}) AS {f}" for f in ACTIVITY)
        for row in await fetch(
            f"SELECT {key} AS key, {sums} FROM store_activity a"
            f" JOIN {STORES} s ON s.id = a.store WHERE a.day = {{}}{where}{grouped(by)}",
            found.as_of,
            *args,
        ):
            found.line(str(row["key"])).update({f: int(row[f] or 0) for f in ACTIVITY})
    return found


async def activity_trend(scope: Scope, days: list[date]) -> dict[date, dict[str, int]]:
    """The scope's members and active members on each of ``days`` that has a snapshot."""
    if not days:
        return {}
    where, args = store_filter(scope, "a.store")
    days_in, day_args = in_list(days, "date")
    sums = ", ".join(f"SUM(a.{f}) AS {f}" for f in ACTIVITY)
    trend: dict[date, dict[str, int]] = defaultdict(dict)
    for row in await fetch(
        f"SELECT a.day, {sums} FROM store_activity a WHERE a.day {days_in}{where} GROUP BY a.day",
        *day_args,
        *args,
    ):
        trend[date.fromisoformat(str(row["day"])[:10])] = {f: int(row[f] or 0) for f in ACTIVITY}
    return dict(trend)


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
