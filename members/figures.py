"""Figures the members domain answers for a store over a period: new members by who
recruited them, and sales by credited advisor with RN3's repeat revenue."""

from __future__ import annotations

from datetime import date
from typing import Any

from core.db import fetch, is_postgres
from members.phones import mask_phone

REPEAT_WINDOW_DAYS = 90


def days_between(later: str, earlier: str) -> str:
    """Whole days from one date expression to another, on either database."""
    if is_postgres():
        return f"({later} - {earlier})"
    return f"(julianday({later}) - julianday({earlier}))"


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
    """Per credited advisor: points, revenue and the revenue of repeat purchases made
    within 90 days of the member's previous purchase anywhere (RN3's numerator), in
    one pass with LAG over the members' purchases."""
    gap = days_between("p.purchased_on", "p.previous_on")
    rows = await fetch(
        "SELECT p.advisor AS who, SUM(p.points_earned) AS points, SUM(p.total_fen) AS revenue,"
        f" SUM(CASE WHEN p.previous_on IS NOT NULL AND {gap} <= {REPEAT_WINDOW_DAYS}"
        " THEN p.total_fen ELSE 0 END) AS repeat_fen FROM (SELECT id, advisor, store,"
        " purchased_on, points_earned, total_fen, LAG(purchased_on) OVER (PARTITION BY member"
        " ORDER BY purchased_at, id) AS previous_on FROM purchase WHERE member IN"
        " (SELECT member FROM purchase WHERE store = {} AND purchased_on BETWEEN {} AND {})) p"
        " WHERE p.store = {} AND p.purchased_on BETWEEN {} AND {} GROUP BY p.advisor",
        store_id,
        first,
        last,
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
