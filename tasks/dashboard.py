"""The store owner's view of the work: per advisor and for the store, over a period.

- tasks_due: tasks due in the period (cancelled ones left out);
- tasks_done / tasks_expired: tasks whose expiry falls in the period, by how they
  ended; completion_rate = done ÷ (done + expired), None when neither;
- conversions / converted_amount: tasks converted by a purchase made in the period;
- new_members: members who joined the store in the period, by recruiting advisor;
- points: points earned on purchases credited to the advisor in the period;
- revenue and rn3: the period's purchase revenue credited to the advisor, and the
  share of it from repeat purchases within 90 days of the member's previous one.
Each figure is one grouped query over the store's rows; the members domain answers
for members and purchases.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from msgspec import Struct

from core import clock
from core.db import fetch
from core.money import share, yuan_text
from core.periods import Period, month_of
from members import figures as member_figures
from members import queries as members
from tasks.queries import completion

NOBODY = "(unassigned)"
Figures = dict[Any, dict[str, int]]


class DashboardLine(Struct):
    advisor_code: str
    advisor_name: str
    active: bool
    new_members: int
    points: int
    tasks_due: int
    tasks_done: int
    tasks_expired: int
    completion_rate: str | None  # e.g. "0.6667"
    conversions: int
    converted_amount: str
    revenue: str
    # RN3: the share of revenue from repeat purchases made within 90 days of the
    # member's previous purchase (anywhere in the chain).
    rn3: str | None


class WrongNumber(Struct):
    member_id: int
    name: str
    phone: str
    reported_at: Any


class Dashboard(Struct):
    store_code: str
    period: str
    first_day: Any
    last_day: Any
    store: DashboardLine
    advisors: list[DashboardLine]
    wrong_numbers: list[WrongNumber]


async def store_dashboard(
    store_code: str, allowed: frozenset[int] | None, period: Period | None
) -> Dashboard:
    """``allowed``: the stores the caller may see (None: every store, for HQ)."""
    store = await members.visible_store(store_code, allowed)
    # By default the store's own current month.
    period = period or month_of(clock.today(clock.zone(store["timezone"])))
    figures = await _figures(store["id"], period.first, period.last)
    lines = await _advisor_lines(store["id"], period, figures)
    total: dict[str, int] = defaultdict(int)
    for f in figures.values():
        for key, value in f.items():
            total[key] += value
    return Dashboard(
        store_code=store_code,
        period=period.name,
        first_day=period.first,
        last_day=period.last,
        store=_line(store_code, "", True, total),
        advisors=lines,
        wrong_numbers=[
            WrongNumber(r["id"], r["name"], r["phone"], r["wrong_number_at"])
            for r in await member_figures.wrong_numbers(store["id"])
        ],
    )


async def _figures(store: int, first: date, last: date) -> Figures:
    figures: Figures = defaultdict(lambda: defaultdict(int))
    for row in await fetch(
        "SELECT assignee AS who, SUM(CASE WHEN due_on BETWEEN {} AND {}"
        " AND status <> 'cancelled' THEN 1 ELSE 0 END) AS due, SUM(CASE WHEN expires_on"
        " BETWEEN {} AND {} AND status = 'done' THEN 1 ELSE 0 END) AS done, SUM(CASE WHEN"
        " expires_on BETWEEN {} AND {} AND status = 'expired' THEN 1 ELSE 0 END) AS expired"
        " FROM task WHERE store = {}"
        " AND (due_on BETWEEN {} AND {} OR expires_on BETWEEN {} AND {}) GROUP BY assignee",
        *(first, last) * 3,
        store,
        *(first, last) * 2,
    ):
        counts = figures[row["who"]]
        counts["tasks_due"] += int(row["due"] or 0)
        counts["tasks_done"] += int(row["done"] or 0)
        counts["tasks_expired"] += int(row["expired"] or 0)
    for row in await fetch(
        f"SELECT t.assignee AS who, COUNT(*) AS n, SUM(t.converted_fen) AS fen FROM task t"
        f" JOIN {members.PURCHASES} p ON p.id = t.converted_purchase WHERE t.store = {{}}"
        " AND t.status = 'done' AND p.purchased_on BETWEEN {} AND {} GROUP BY t.assignee",
        store,
        first,
        last,
    ):
        figures[row["who"]]["conversions"] += int(row["n"])
        figures[row["who"]]["converted_fen"] += int(row["fen"] or 0)
    for who, n in (await member_figures.new_members_by_recruiter(store, first, last)).items():
        figures[who]["new_members"] += n
    for who, sales in (await member_figures.sales_by_advisor(store, first, last)).items():
        for key, value in sales.items():
            figures[who][key] += value
    return figures


async def _advisor_lines(store: int, period: Period, figures: Figures) -> list[DashboardLine]:
    """A line for each of the store's advisors and anyone else who worked its tasks or
    was credited with its figures in the period; unassigned work last."""
    worked = await fetch(
        "SELECT DISTINCT assignee FROM task WHERE store = {} AND assignee IS NOT NULL"
        " AND (due_on BETWEEN {} AND {} OR expires_on BETWEEN {} AND {})",
        store,
        *(period.first, period.last) * 2,
    )
    ids = set(await members.advisor_ids_of_store(store)) | {r["assignee"] for r in worked}
    ids |= {who for who in figures if who is not None}
    cards = await members.advisor_cards(sorted(ids))
    lines = [
        _line(a["code"], a["name"], bool(a["active"]), figures.get(a_id, defaultdict(int)))
        for a_id, a in sorted(cards.items(), key=lambda kv: kv[1]["code"])
    ]
    if None in figures:
        lines.append(_line(NOBODY, "", False, figures[None]))
    return lines


def _line(code: str, name: str, active: bool, f: dict[str, int]) -> DashboardLine:
    return DashboardLine(
        advisor_code=code,
        advisor_name=name,
        active=active,
        new_members=f["new_members"],
        points=f["points"],
        tasks_due=f["tasks_due"],
        tasks_done=f["tasks_done"],
        tasks_expired=f["tasks_expired"],
        completion_rate=completion(f["tasks_done"], f["tasks_expired"]),
        conversions=f["conversions"],
        converted_amount=yuan_text(f["converted_fen"]),
        revenue=yuan_text(f["revenue_fen"]),
        rn3=share(f["repeat_fen"], f["revenue_fen"]),
    )
