"""Insights: whether the playbook works, and how a scope's members are doing.

- Playbook: per task kind and per campaign, tasks counted in the period their due
  date falls in. ``due`` leaves the cancelled out (a member asked not to be called,
  or a newer task took the place); ``contacted``: has an outcome; ``reached``: an
  outcome in the reached set; ``converted``: a purchase followed a reach.
  completion_rate = done ÷ (done + expired); conversion_rate = converted ÷ reached.
- Members: the members domain's figures (members, recruits, activity, receipts,
  revenue, RN3) with the stage_up tasks due in the period and how many of them were
  kept (the member bought the next stage within 30 days of the boundary).

Both read the summaries the database keeps in each writing transaction
(``task_summary``, ``store_day``) and the daily activity snapshots: a national month
is a grouped read of summary rows, never of tasks or purchases."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from msgspec import Struct

from core.db import fetch, in_list
from core.errors import InvalidInput
from core.money import FEN, share, yuan_text
from core.periods import Period, month_of
from members.insights import (
    FIGURES,
    SPLITS,
    activity_trend,
    grouped,
    key_column,
    member_figures,
)
from members.insights import sales_trend as member_sales_trend
from members.queries import STORES
from members.scopes import Scope, store_filter
from tasks.playbook import KINDS

COUNTS = ("made", "cancelled", "contacted", "reached", "done", "expired", "converted")


class PlaybookFigures(Struct):
    made: int
    due: int
    contacted: int
    reached: int
    done: int
    expired: int
    converted: int
    converted_amount: str
    completion_rate: str | None
    conversion_rate: str | None


class KindFigures(PlaybookFigures):
    kind: str


class CampaignFigures(PlaybookFigures):
    campaign_id: int
    name: str


class PlaybookInsights(Struct):
    scope: str
    period: str
    first_day: date
    last_day: date
    kinds: list[KindFigures]
    campaigns: list[CampaignFigures]


class MemberLine(Struct):
    members: int
    new_members: int
    active_3m: int
    active_12m: int
    receipts: int
    revenue: str
    average_ticket: str | None
    rn3: str | None
    stage_up_due: int
    stage_up_kept: int
    stage_up_retention: str | None


class MemberRow(MemberLine):
    key: str  # a region's name or a store's code
    name: str  # the region's name or the store's


class MemberInsights(Struct):
    scope: str
    period: str
    first_day: date
    last_day: date
    by: str | None
    # The activity snapshot the member counts are of: the latest on or before the
    # period's last day (yesterday, for the current month).
    active_as_of: date | None
    total: MemberLine
    rows: list[MemberRow]


class TrendPoint(Struct):
    month: str
    members: int
    active_3m: int
    active_12m: int
    rn3: str | None
    stage_up_due: int
    stage_up_kept: int
    stage_up_retention: str | None


# --- the playbook --------------------------------------------------------------


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    n = {c: int(row.get(c) or 0) for c in COUNTS}
    return {
        "made": n["made"],
        "due": n["made"] - n["cancelled"],
        "contacted": n["contacted"],
        "reached": n["reached"],
        "done": n["done"],
        "expired": n["expired"],
        "converted": n["converted"],
        "converted_amount": yuan_text(int(row.get("converted_fen") or 0)),
        "completion_rate": share(n["done"], n["done"] + n["expired"]),
        "conversion_rate": share(n["converted"], n["reached"]),
    }


async def playbook_insights(scope: Scope, period: Period) -> PlaybookInsights:
    where, args = store_filter(scope, "t.store")
    sums = ", ".join(f"SUM(t.{c}) AS {c}" for c in (*COUNTS, "converted_fen"))
    rows = await fetch(
        f"SELECT t.kind, t.campaign, {sums} FROM task_summary t WHERE t.period = {{}}{where}"
        " GROUP BY t.kind, t.campaign",
        period.name,
        *args,
    )
    by_kind: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
    for row in rows:
        line = by_kind.setdefault(str(row["kind"]), {})
        for column in (*COUNTS, "converted_fen"):
            line[column] = line.get(column, 0) + int(row[column] or 0)
    campaign_rows = [r for r in rows if r["kind"] == "campaign" and int(r["campaign"])]
    names = await campaign_names([int(r["campaign"]) for r in campaign_rows])
    return PlaybookInsights(
        scope=scope.text,
        period=period.name,
        first_day=period.first,
        last_day=period.last,
        kinds=[KindFigures(kind=kind, **_figures(line)) for kind, line in by_kind.items()],
        campaigns=[
            CampaignFigures(
                campaign_id=int(r["campaign"]),
                name=names.get(int(r["campaign"]), ""),
                **_figures(r),
            )
            for r in sorted(campaign_rows, key=lambda r: int(r["campaign"]))
        ],
    )


async def campaign_names(ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    cond, args = in_list(sorted(set(ids)), "int")
    rows = await fetch(f"SELECT id, name FROM campaign WHERE id {cond}", *args)
    return {int(r["id"]): str(r["name"]) for r in rows}


# --- members -------------------------------------------------------------------


def check_split(scope: Scope, by: str | None) -> None:
    """``by`` goes one level down: the chain by region or store, a region by store."""
    if by is None:
        return
    if by not in SPLITS:
        raise InvalidInput.on("by", "give region or store")
    if scope.kind == "store" or (scope.kind == "region" and by == "region"):
        raise InvalidInput.on("by", f"{scope.text} cannot be split by {by}")


async def _stage_ups(
    scope: Scope, periods: list[str], by: str | None
) -> dict[tuple[str, str], tuple[int, int]]:
    """(period, key) -> (stage_up due, kept) from the task summaries."""
    key = key_column(by)
    where, args = store_filter(scope, "t.store")
    periods_in, period_args = in_list(periods, "text")
    join = f" JOIN {STORES} s ON s.id = t.store" if by else ""
    rows = await fetch(
        f"SELECT t.period, {key} AS key, SUM(t.made - t.cancelled) AS due, SUM(t.kept) AS kept"
        f" FROM task_summary t{join} WHERE t.kind = 'stage_up' AND t.period {periods_in}{where}"
        f"{grouped(by, 't.period')}",
        *period_args,
        *args,
    )
    return {
        (str(r["period"]), str(r["key"])): (int(r["due"] or 0), int(r["kept"] or 0)) for r in rows
    }


def _average(revenue_fen: int, receipts: int) -> str | None:
    if receipts == 0:
        return None
    return str((Decimal(revenue_fen) / 100 / receipts).quantize(FEN, ROUND_HALF_UP))


def _member_line(f: dict[str, int], due: int, kept: int) -> dict[str, Any]:
    return {
        "members": f["members"],
        "new_members": f["new_members"],
        "active_3m": f["active_3m"],
        "active_12m": f["active_12m"],
        "receipts": f["receipts"],
        "revenue": yuan_text(f["revenue_fen"]),
        "average_ticket": _average(f["revenue_fen"], f["receipts"]),
        "rn3": share(f["repeat_fen"], f["revenue_fen"]),
        "stage_up_due": due,
        "stage_up_kept": kept,
        "stage_up_retention": share(kept, due),
    }


async def member_insights(scope: Scope, period: Period, by: str | None) -> MemberInsights:
    check_split(scope, by)
    found = await member_figures(scope, period, by)
    stage_ups = await _stage_ups(scope, [period.name], by)
    keys = sorted(set(found.lines) | {k for _, k in stage_ups})
    total = dict.fromkeys(FIGURES, 0)
    total_due = total_kept = 0
    rows = []
    names = await _names(by, keys)
    for key in keys:
        figures = found.line(key)
        due, kept = stage_ups.get((period.name, key), (0, 0))
        for name in FIGURES:
            total[name] += figures[name]
        total_due, total_kept = total_due + due, total_kept + kept
        if by:
            rows.append(
                MemberRow(key=key, name=names.get(key, key), **_member_line(figures, due, kept))
            )
    return MemberInsights(
        scope=scope.text,
        period=period.name,
        first_day=period.first,
        last_day=period.last,
        by=by,
        active_as_of=found.as_of,
        total=MemberLine(**_member_line(total, total_due, total_kept)),
        rows=rows,
    )


async def _names(by: str | None, keys: list[str]) -> dict[str, str]:
    if by != "store" or not keys:
        return {}
    cond, args = in_list(keys, "text")
    rows = await fetch(f"SELECT code, name FROM {STORES} s WHERE s.code {cond}", *args)
    return {str(r["code"]): str(r["name"]) for r in rows}


def months_back(today: date, months: int) -> list[Period]:
    """The ``months`` months ending with ``today``'s, oldest first."""
    found = [month_of(today)]
    while len(found) < months:
        found.insert(0, month_of(found[0].first - timedelta(days=1)))
    return found


async def member_trend(
    scope: Scope, today: date, months: int = 6, last: Period | None = None
) -> list[TrendPoint]:
    """Active members at each month's end (yesterday for this month), RN3 and stage-up
    retention, month by month up to ``last`` (by default today's month): the chart HQ
    and a region watch."""
    periods = months_back(last.first if last else today, months)
    ends = [min(p.last, today - timedelta(days=1)) for p in periods]
    activity = await activity_trend(scope, ends)
    sales = await member_sales_trend(scope, [p.name for p in periods])
    stage_ups = await _stage_ups(scope, [p.name for p in periods], None)
    points = []
    for period, end in zip(periods, ends, strict=True):
        active = activity.get(end, {})
        sold = sales.get(period.name, {})
        due, kept = stage_ups.get((period.name, ""), (0, 0))
        points.append(
            TrendPoint(
                month=period.name,
                members=active.get("members", 0),
                active_3m=active.get("active_3m", 0),
                active_12m=active.get("active_12m", 0),
                rn3=share(sold.get("repeat_fen", 0), sold.get("revenue_fen", 0)),
                stage_up_due=due,
                stage_up_kept=kept,
                stage_up_retention=share(kept, due),
            )
        )
    return points
