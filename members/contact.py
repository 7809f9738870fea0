"""Who looks after a member and how they may be reached: the member's own
do-not-contact request, a wrong number reported from a call, and members handed on
when their advisor leaves. Other domains ask for these changes here, in their own
transaction; only this domain writes member rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.db import fetch, in_list
from members.events import AdvisorLeft


async def mark_do_not_contact(member_id: int) -> None:
    await fetch("UPDATE member SET do_not_contact = true WHERE id = {}", member_id)


async def report_wrong_number(member_id: int, at: datetime) -> None:
    """The first report stands: the owner's dashboard lists it until the phone is fixed."""
    await fetch(
        "UPDATE member SET wrong_number_at = COALESCE(wrong_number_at, {}) WHERE id = {}",
        at,
        member_id,
    )


async def hand_members_over(event: AdvisorLeft) -> None:
    """The members of an advisor who left (or moved) go to the other active advisors
    of their home store, the least loaded first, round-robin, in one statement."""
    stores = [
        row["home_store"]
        for row in await fetch(
            "SELECT DISTINCT home_store FROM member WHERE owning_advisor = {}"
            " AND (NOT {} OR home_store <> {})",
            event.advisor_id,
            event.active,
            event.store_id,
        )
    ]
    if not stores:
        return
    cond, args = in_list(stores, "int")
    await fetch(
        f"{_handed_over(cond)} UPDATE member SET owning_advisor = x.advisor"
        " FROM (SELECT id, advisor FROM handed) AS x WHERE member.id = x.id",
        *args,
        event.advisor_id,
        *args,
        event.advisor_id,
        *args,
    )


def _handed_over(cond: str) -> str:
    """Who takes each of an advisor's members (``handed``: member id, advisor): the
    other active advisors of the member's home store, the least loaded first."""
    return (
        "WITH loads AS ("
        " SELECT a.id, a.store, ROW_NUMBER() OVER (PARTITION BY a.store"
        " ORDER BY COALESCE(o.n, 0), a.id) AS rn, COUNT(*) OVER (PARTITION BY a.store) AS cnt"
        " FROM advisor a LEFT JOIN (SELECT owning_advisor, COUNT(*) AS n FROM member"
        f" WHERE home_store {cond} GROUP BY owning_advisor) o ON o.owning_advisor = a.id"
        f" WHERE a.active AND a.id <> {{}} AND a.store {cond}),"
        " orphans AS (SELECT m.id, m.home_store, ROW_NUMBER() OVER (PARTITION BY m.home_store"
        " ORDER BY m.id) AS rn FROM member m WHERE m.owning_advisor = {}"
        f" AND m.home_store {cond}),"
        " handed AS (SELECT o.id, l.id AS advisor FROM orphans o JOIN loads l"
        " ON l.store = o.home_store AND l.rn = ((o.rn - 1) % l.cnt) + 1)"
    )


async def handover_preview(advisor_id: int) -> tuple[int, list[dict[str, Any]]]:
    """If this advisor left now: how many members they look after, and who would take
    how many (none left out: a store with no other active advisor keeps them unowned
    until one joins)."""
    stores = [
        row["home_store"]
        for row in await fetch(
            "SELECT DISTINCT home_store FROM member WHERE owning_advisor = {}", advisor_id
        )
    ]
    if not stores:
        return 0, []
    cond, args = in_list(stores, "int")
    owned = await fetch("SELECT COUNT(*) AS n FROM member WHERE owning_advisor = {}", advisor_id)
    takers = await fetch(
        f"{_handed_over(cond)} SELECT a.code, a.name, COUNT(*) AS members FROM handed h"
        " JOIN advisor a ON a.id = h.advisor GROUP BY a.code, a.name ORDER BY a.code",
        *args,
        advisor_id,
        *args,
        advisor_id,
        *args,
    )
    return int(owned[0]["n"]), takers
