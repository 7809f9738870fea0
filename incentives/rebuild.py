"""Rebuilding league-table totals from the score ledger alone: the days, ISO weeks
and month of a month, or of every open month. The incremental path must agree
exactly (``tests/test_rebuild.py`` checks it on random histories).

The tills go on meanwhile: a month is rebuilt a range of advisors (then of stores)
at a time, each range a slice alone on the ledger (``incentives.slices``) that sums
the range's facts of the month's weeks, deletes the totals no fact backs and
writes those that differ. Totals that are right (the usual case) are read, not
rewritten.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any

from core.db import count_changed, fetch, in_list
from core.periods import parse_period, week_key
from incentives.rules import KINDS, Weights, load_weights
from incentives.slices import Between, Pace, in_slice

# Advisors (or stores) in the first slice; later slices are sized by time.
FIRST_SLICE = 32
COLUMNS = ("new_members", "points", "tasks_done", "tasks_converted")


@dataclass(frozen=True, slots=True)
class Totals:
    table: str
    subject: str


ADVISOR_TOTALS = Totals("advisor_score", "advisor")
STORE_TOTALS = Totals("store_score", "store")


@dataclass(slots=True)
class RebuildReport:
    months: list[str]
    advisor_rows: int = 0  # totals written (inserted, corrected or deleted)
    store_rows: int = 0
    seconds: float = 0.0
    slicing: Pace = field(default_factory=lambda: Pace(0))


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


async def rebuild(month: str | None = None, between: Between = None) -> RebuildReport:
    """Recompute the totals of the days, ISO weeks and month of ``month`` (or of every
    open month) from the ledger alone, in slices; ``between`` runs after each."""
    started = time.perf_counter()
    months = [month] if month is not None else await open_months()
    report = RebuildReport(months)
    for m in months:
        advisors = await _rebuild_totals(m, ADVISOR_TOTALS, between)
        stores = await _rebuild_totals(m, STORE_TOTALS, between)
        report.advisor_rows += advisors.written
        report.store_rows += stores.written
        report.slicing.add(advisors)
        report.slicing.add(stores)
    report.seconds = time.perf_counter() - started
    return report


async def _rebuild_totals(month: str, totals: Totals, between: Between) -> Pace:
    """The month's totals of ``totals``, a range of subject ids a slice. The first
    range is open below and the last open above, so that totals of subjects outside
    the span of the month's facts (stale ones, or of an advisor added meanwhile) are
    covered."""
    week_cond, week_args = in_list(_weeks_of(month), "text")
    span = await fetch(
        f"SELECT MIN({totals.subject}) AS low, MAX({totals.subject}) AS high FROM score_fact"
        f" WHERE counts_week {week_cond}",
        *week_args,
    )
    low, high = int(span[0]["low"] or 0), int(span[0]["high"] or 0)
    pace = Pace(FIRST_SLICE)
    start: int | None = None
    while True:
        end = (low if start is None else start) + pace.size
        last = end > high
        await _read_ahead(month, totals, start, None if last else end)
        pace.written += await in_slice(
            partial(_rebuild_slice, month, totals, start, None if last else end), pace, between
        )
        if last:
            return pace
        start = end


async def _read_ahead(month: str, totals: Totals, start: int | None, end: int | None) -> None:
    """The slice's facts and totals read once without the lock, so that the slice
    finds them in memory and holds the lock for its sums and writes alone."""
    bounds, bound_args = _bounds(totals.subject, start, end)
    week_cond, week_args = in_list(_weeks_of(month), "text")
    await fetch(
        f"SELECT SUM(amount) AS n FROM score_fact WHERE counts_week {week_cond}{bounds}",
        *week_args,
        *bound_args,
    )
    period_cond, period_args = in_list(_periods_of(month), "text")
    await fetch(
        f"SELECT SUM(score) AS n FROM {totals.table} WHERE period {period_cond}{bounds}",
        *period_args,
        *bound_args,
    )


def _bounds(subject: str, start: int | None, end: int | None) -> tuple[str, list[int]]:
    bounds, bound_args = "", list[int]()
    if start is not None:
        bounds, bound_args = f" AND {subject} >= {{}}", [start]
    if end is not None:
        bounds, bound_args = f"{bounds} AND {subject} < {{}}", [*bound_args, end]
    return bounds, bound_args


async def _rebuild_slice(month: str, totals: Totals, start: int | None, end: int | None) -> int:
    """Inside the slice's transaction: the totals of subjects ``start`` ≤ id < ``end``
    for the month's days, weeks and month made equal to their facts' sums."""
    table, subject = totals.table, totals.subject
    weeks = _weeks_of(month)
    periods = _periods_of(month)
    bounds, bound_args = _bounds(subject, start, end)
    week_cond, week_args = in_list(weeks, "text")
    period_cond, period_args = in_list(periods, "text")
    sums = _sums(await load_weights())
    # A week that runs into the next or last month is recomputed whole.
    ctes = (
        f"facts AS MATERIALIZED (SELECT {subject} AS who, counts_on, counts_week,"
        f" counts_month, kind, amount FROM score_fact WHERE counts_week {week_cond}{bounds}),"
        f" fresh AS MATERIALIZED (SELECT CAST(counts_on AS TEXT) AS period, who, {sums}"
        " FROM facts WHERE counts_month = {} GROUP BY CAST(counts_on AS TEXT), who"
        f" UNION ALL SELECT counts_week, who, {sums} FROM facts GROUP BY counts_week, who"
        f" UNION ALL SELECT counts_month, who, {sums} FROM facts WHERE counts_month = {{}}"
        " GROUP BY counts_month, who)"
    )
    fresh_args: list[Any] = [*week_args, *bound_args, month, month]
    gone = await count_changed(
        f"DELETE FROM {table} WHERE period {period_cond}{bounds} AND NOT EXISTS"
        f" (SELECT 1 FROM fresh f WHERE f.period = {table}.period AND f.who = {table}.{subject})",
        *fresh_args,
        *period_args,
        *bound_args,
        ctes=ctes,
    )
    differs = " OR ".join(f"{table}.{c} <> excluded.{c}" for c in (*COLUMNS, "score"))
    made = await count_changed(
        f"INSERT INTO {table} (period, {subject}, {', '.join(COLUMNS)}, score)"
        f" SELECT period, who, {', '.join(COLUMNS)}, score FROM fresh WHERE true"
        f" ORDER BY period, who ON CONFLICT (period, {subject}) DO UPDATE SET"
        f" {', '.join(f'{c} = excluded.{c}' for c in (*COLUMNS, 'score'))} WHERE {differs}",
        *fresh_args,
        ctes=ctes,
    )
    return gone + made


def _sums(weights: Weights) -> str:
    """Each kind's sum as its column, and the score by ``weights`` (whole numbers)."""
    counts = [f"SUM(CASE WHEN kind = '{kind}' THEN amount ELSE 0 END)" for kind in KINDS]
    score = " + ".join(f"{c} * {int(weights.of(k))}" for c, k in zip(counts, KINDS, strict=True))
    return ", ".join(f"{c} AS {n}" for c, n in zip(counts, COLUMNS, strict=True)) + (
        f", {score} AS score"
    )


def _periods_of(month: str) -> list[str]:
    """The totals a month's rebuild makes: its days, its ISO weeks whole, itself."""
    return [day.isoformat() for day in _days_of(month)] + _weeks_of(month) + [month]


def _days_of(month: str) -> Iterable[date]:
    period = parse_period(month)
    day = period.first
    while day <= period.last:
        yield day
        day += timedelta(days=1)
