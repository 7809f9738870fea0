"""The store owner's view of the work: per advisor and for the store, over a period.

- tasks_due: tasks due in the period (cancelled ones left out);
- tasks_done / tasks_expired: tasks whose expiry falls in the period, by how they
  ended; completion_rate = done ÷ (done + expired), None when neither;
- conversions / converted_amount: tasks converted by a purchase made in the period;
- new_members: members who joined the store in the period, by recruiting advisor;
- points: points earned on purchases credited to the advisor in the period;
- revenue and rn3: the period's purchase revenue credited to the advisor, and the
  share of it from repeat purchases within 90 days of the member's previous one.
Each figure is one grouped query over the store's rows.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from msgspec import Struct

from members import clock
from members.db import fetch, is_postgres
from members.errors import NotFound
from members.periods import Period, month_of
from members.phones import mask_phone
from members.services import fen_to_yuan

NOBODY = "(unassigned)"
REPEAT_DAYS = 90


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


def share(part: int, whole: int) -> str | None:
    """A ratio to four places, half-up; None when there is nothing to divide."""
    if whole == 0:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_UP))


def completion(done: int, expired: int) -> str | None:
    return share(done, done + expired)


def _days_between(later: str, earlier: str) -> str:
    if is_postgres():
        return f"({later} - {earlier})"
    return f"(julianday({later}) - julianday({earlier}))"


async def store_dashboard(
    store_code: str, allowed: frozenset[int] | None, period: Period | None
) -> Dashboard:
    """``allowed``: the stores the caller may see (None: every store, for HQ)."""
    stores = await fetch("SELECT id, timezone FROM store WHERE code = {}", store_code)
    if not stores or (allowed is not None and stores[0]["id"] not in allowed):
        raise NotFound(f"no store {store_code} of yours")
    store = stores[0]["id"]
    # By default the store's own current month.
    period = period or month_of(clock.today(clock.zone(stores[0]["timezone"])))
    first, last = period.first, period.last
    figures: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in await fetch(
        "SELECT assignee AS who, SUM(CASE WHEN due_on BETWEEN {} AND {}"
        " AND status <> 'cancelled' THEN 1 ELSE 0 END) AS due, SUM(CASE WHEN expires_on"
        " BETWEEN {} AND {} AND status = 'done' THEN 1 ELSE 0 END) AS done, SUM(CASE WHEN"
        " expires_on BETWEEN {} AND {} AND status = 'expired' THEN 1 ELSE 0 END) AS expired"
        " FROM task WHERE store = {}"
        " AND (due_on BETWEEN {} AND {} OR expires_on BETWEEN {} AND {}) GROUP BY assignee",
        first,
        last,
        first,
        last,
        first,
        last,
        store,
        first,
        last,
        first,
        last,
    ):
        counts = figures[row["who"]]
        counts["tasks_due"] += int(row["due"] or 0)
        counts["tasks_done"] += int(row["done"] or 0)
        counts["tasks_expired"] += int(row["expired"] or 0)
    for row in await fetch(
        "SELECT t.assignee AS who, COUNT(*) AS n, SUM(t.converted_fen) AS fen FROM task t"
        " JOIN purchase p ON p.id = t.converted_purchase WHERE t.store = {} AND t.status = 'done'"
        " AND p.purchased_on BETWEEN {} AND {} GROUP BY t.assignee",
        store,
        first,
        last,
    ):
        figures[row["who"]]["conversions"] += int(row["n"])
        figures[row["who"]]["converted_fen"] += int(row["fen"] or 0)
    for row in await fetch(
        "SELECT recruited_by AS who, COUNT(*) AS n FROM member WHERE home_store = {}"
        " AND joined_on BETWEEN {} AND {} GROUP BY recruited_by",
        store,
        first,
        last,
    ):
        figures[row["who"]]["new_members"] += int(row["n"])
    # Revenue, points and RN3 in one pass: each purchase here in the period, with the
    # member's previous purchase anywhere (LAG over the member's purchases).
    gap = _days_between("p.purchased_on", "p.previous_on")
    for row in await fetch(
        "SELECT p.advisor AS who, SUM(p.points_earned) AS points, SUM(p.total_fen) AS revenue,"
        f" SUM(CASE WHEN p.previous_on IS NOT NULL AND {gap} <= {REPEAT_DAYS}"
        " THEN p.total_fen ELSE 0 END) AS repeat_fen FROM (SELECT id, advisor, store,"
        " purchased_on, points_earned, total_fen, LAG(purchased_on) OVER (PARTITION BY member"
        " ORDER BY purchased_at, id) AS previous_on FROM purchase WHERE member IN"
        " (SELECT member FROM purchase WHERE store = {} AND purchased_on BETWEEN {} AND {})) p"
        " WHERE p.store = {} AND p.purchased_on BETWEEN {} AND {} GROUP BY p.advisor",
        store,
        first,
        last,
        store,
        first,
        last,
    ):
        figures[row["who"]]["points"] += int(row["points"] or 0)
        figures[row["who"]]["revenue_fen"] += int(row["revenue"] or 0)
        figures[row["who"]]["repeat_fen"] += int(row["repeat_fen"] or 0)
    advisors = {
        row["id"]: row
        for row in await fetch(
            "SELECT id, code, name, active FROM advisor WHERE store = {} OR id IN"
            " (SELECT assignee FROM task WHERE store = {} AND assignee IS NOT NULL"
            " AND (due_on BETWEEN {} AND {} OR expires_on BETWEEN {} AND {}))",
            store,
            store,
            first,
            last,
            first,
            last,
        )
    }
    for who in list(figures):
        if who is not None and who not in advisors:
            advisors.update(
                {
                    r["id"]: r
                    for r in await fetch(
                        "SELECT id, code, name, active FROM advisor WHERE id = {}", who
                    )
                }
            )

    def line(code: str, name: str, active: bool, f: dict[str, int]) -> DashboardLine:
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
            converted_amount=str(fen_to_yuan(f["converted_fen"])),
            revenue=str(fen_to_yuan(f["revenue_fen"])),
            rn3=share(f["repeat_fen"], f["revenue_fen"]),
        )

    lines = [
        line(a["code"], a["name"], bool(a["active"]), figures.get(a_id, defaultdict(int)))
        for a_id, a in sorted(advisors.items(), key=lambda kv: kv[1]["code"])
    ]
    if None in figures:
        lines.append(line(NOBODY, "", False, figures[None]))
    total: dict[str, int] = defaultdict(int)
    for f in figures.values():
        for key, value in f.items():
            total[key] += value
    wrong = await fetch(
        "SELECT id, name, phone, wrong_number_at FROM member WHERE home_store = {}"
        " AND wrong_number_at IS NOT NULL ORDER BY wrong_number_at",
        store,
    )
    return Dashboard(
        store_code=store_code,
        period=period.name,
        first_day=first,
        last_day=last,
        store=line(store_code, "", True, total),
        advisors=lines,
        wrong_numbers=[
            WrongNumber(r["id"], r["name"], mask_phone(r["phone"]), r["wrong_number_at"])
            for r in wrong
        ],
    )
