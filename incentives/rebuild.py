"""Rebuilding league-table totals from the score ledger alone: the days, ISO weeks
and month of a month, or of every open month. The incremental path must agree
exactly (``tests/test_rebuild.py`` checks it on random histories)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

from core.db import fetch, in_list, in_write_transaction, insert_count
from core.periods import parse_period, week_key
from incentives.rules import KINDS, hold_ledger, load_weights


@dataclass(slots=True)
class RebuildReport:
    months: list[str]
    advisor_rows: int = 0
    store_rows: int = 0
    seconds: float = 0.0


async def open_months() -> list[str]:
    rows = await fetch(
        "SELECT DISTINCT counts_month FROM score_fact WHERE counts_month NOT IN"
        " (SELECT month FROM closed_month) ORDER BY counts_month"
    )
    return [row["counts_month"] for row in rows]


def _weeks_of(month: str) -> list[str]:
    period = parse_period(month)
    weeks: list[str] = []
    day = period.first
    while day <= period.last:
        if not weeks or weeks[-1] != week_key(day):
            weeks.append(week_key(day))
        day += timedelta(days=1)
    return weeks


async def rebuild(month: str | None = None) -> RebuildReport:
    """Recompute the totals of the days, ISO weeks and month of ``month`` (or of every
    open month) from the ledger alone. The incremental path must agree exactly."""
    started = datetime.now()
    months = [month] if month is not None else await open_months()
    report = RebuildReport(months)
    for m in months:
        advisor_rows, store_rows = await in_write_transaction(partial(_rebuild_month, m))
        report.advisor_rows += advisor_rows
        report.store_rows += store_rows
    report.seconds = (datetime.now() - started).total_seconds()
    return report


async def _rebuild_month(month: str) -> tuple[int, int]:
    await hold_ledger(alone=True)
    weights = [(await load_weights()).of(kind) for kind in KINDS]
    days = [day.isoformat() for day in _days_of(month)]
    weeks = _weeks_of(month)
    sums = ", ".join(f"SUM(CASE WHEN kind = '{kind}' THEN amount ELSE 0 END)" for kind in KINDS)
    score = " + ".join(
        f"SUM(CASE WHEN kind = '{kind}' THEN amount ELSE 0 END) * {{}}" for kind in KINDS
    )
    day_cond, day_args = in_list(days, "text")
    week_cond, week_args = in_list(weeks, "text")
    made = []
    for table, subject in (("advisor_score", "advisor"), ("store_score", "store")):
        await fetch(f"DELETE FROM {table} WHERE period {day_cond}", *day_args)
        await fetch(f"DELETE FROM {table} WHERE period {week_cond}", *week_args)
        await fetch(f"DELETE FROM {table} WHERE period = {{}}", month)
        rows = 0
        # A week that runs into the next or last month is recomputed whole.
        for period_of, where, where_args in (
            ("CAST(counts_on AS TEXT)", "counts_month = {}", [month]),
            ("counts_week", f"counts_week {week_cond}", week_args),
            ("counts_month", "counts_month = {}", [month]),
        ):
            rows += await insert_count(
                f"INSERT INTO {table} (period, {subject}, new_members, points, tasks_done,"
                f" tasks_converted, score) SELECT {period_of}, {subject}, {sums}, {score}"
                f" FROM score_fact WHERE {where} GROUP BY {period_of}, {subject}",
                *weights,
                *where_args,
            )
        made.append(rows)
    return made[0], made[1]


def _days_of(month: str) -> Iterable[date]:
    period = parse_period(month)
    day = period.first
    while day <= period.last:
        yield day
        day += timedelta(days=1)
