"""Figures the members domain answers for a store over a period: new members by who
recruited them, and sales by credited advisor with RN3's repeat revenue."""

from __future__ import annotations

from datetime import date
from typing import Any

from core.db import days_between, fetch, in_list
from members.phones import mask_phone

REPEAT_WINDOW_DAYS = 90


async def new_members_by_recruiter(store_id: int, first: date, last: date) -> dict[Any, int]:
    rows = await fetch(
        "SELECT recruited_by AS who, COUNT(*) AS n FROM member WHERE home_store = {}"
        " AND joined_on BETWEEN {} AND {} GROUP BY recruited_by",
        store_id,
        first,
        last,
    )
    return {row["who"]: int(row["n"]) for row in rows}


async def sales_by_advisor(store_id: int, first: date, last: date) -> dict[Any, dict[str, int]]:
    """Per credited advisor: points, revenue and RN3's numerator, the revenue of repeat
    purchases (within 90 days of the member's previous purchase anywhere)."""
    rows = await fetch(
        "SELECT advisor AS who, SUM(points_earned) AS points, SUM(total_fen) AS revenue,"
        " SUM(CASE WHEN repeat THEN total_fen ELSE 0 END) AS repeat_fen FROM purchase"
        " WHERE store = {} AND purchased_on BETWEEN {} AND {} GROUP BY advisor",
        store_id,
        first,
        last,
    )
    return {
        row["who"]: {
            "points": int(row["points"] or 0),
            "revenue_fen": int(row["revenue"] or 0),
            "repeat_fen": int(row["repeat_fen"] or 0),
        }
        for row in rows
    }


async def wrong_numbers(store_id: int) -> list[dict[str, Any]]:
    """Members whose phone an advisor found wrong, masked, oldest report first."""
    rows = await fetch(
        "SELECT id, name, phone, wrong_number_at FROM member WHERE home_store = {}"
        " AND wrong_number_at IS NOT NULL ORDER BY wrong_number_at",
        store_id,
    )
    return [{**r, "phone": mask_phone(r["phone"])} for r in rows]


async def mark_repeats(member_ids: list[int]) -> None:
    """RN3's flag on every purchase of these members: bought within 90 days of the
    member's previous purchase. A receipt sent late can make the next purchase a
    repeat (or no longer one): each member's purchases are read again in order and
    only the flags that changed are written (the store totals follow, by trigger)."""
    if not member_ids:
        return
    cond, args = in_list(member_ids, "bigint")
    gap = days_between(
        "purchased_on", "LAG(purchased_on) OVER (PARTITION BY member ORDER BY purchased_at, id)"
    )
    await fetch(
        "UPDATE purchase SET repeat = x.rep FROM (SELECT id,"
        f" COALESCE({gap} <= {REPEAT_WINDOW_DAYS}, false) AS rep"
        f" FROM purchase WHERE member {cond}) AS x"
        " WHERE purchase.id = x.id AND purchase.repeat <> x.rep",
        *args,
    )
