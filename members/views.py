"""The member at a glance: at the till (balance, babies, tier, points about to lapse)
and in the advisor's member view (with purchases and the ledger's tail)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from core import clock
from core.db import fetch, in_list, rows_by
from core.errors import NotFound
from core.money import fen_to_yuan, yuan_text
from members.lots import lots_of
from members.phones import phone_or_error
from members.policy import load_policy
from members.queries import LOTS, babies_of_members
from members.schemas import (
    ExpiringPoints,
    LedgerEntry,
    MemberProfile,
    PosMemberOut,
    PurchaseLineView,
    PurchaseView,
)
from members.tiers import effective_tier


async def member_for_till(phone_text: str) -> PosMemberOut:
    phone = phone_or_error(phone_text, "phone")
    rows = await fetch(
        "SELECT m.id, m.name, m.points_balance, s.code AS home_store, a.code AS owning_advisor,"
        " s.timezone, m.tier, m.tier_year FROM member m JOIN store s ON s.id = m.home_store"
        " LEFT JOIN advisor a ON a.id = m.owning_advisor WHERE m.phone = {}",
        phone,
    )
    if not rows:
        raise NotFound("no member with this phone")
    row = rows[0]
    today = clock.today(clock.zone(row["timezone"]))
    return PosMemberOut(
        member_id=row["id"],
        name=row["name"],
        points_balance=row["points_balance"],
        babies=(await babies_of_members([row["id"]], today)).get(row["id"], []),
        home_store=row["home_store"],
        owning_advisor=row["owning_advisor"],
        **await tier_and_lots(row["id"], row["tier"], row["tier_year"], today),
    )


async def tier_and_lots(
    member_id: int, tier: str | None, tier_year: int | None, today: date
) -> dict[str, Any]:
    """The tier a member holds today (code and name), and their lots with points left."""
    held = effective_tier(tier, tier_year, today)
    return {
        "tier": held,
        "tier_name": (await load_policy()).name_of(held),
        "points_expiring": [
            ExpiringPoints(points, last) for points, last in await lots_of(member_id, today)
        ],
    }


async def expiring_soon(member_ids: Sequence[int], today: date) -> dict[int, list[ExpiringPoints]]:
    """Per member, their lots lapsing within the policy's warning days."""
    if not member_ids:
        return {}
    until = today + timedelta(days=(await load_policy()).expiry_warning_days)
    cond, args = in_list(sorted(set(member_ids)), "bigint")
    found: dict[int, list[ExpiringPoints]] = defaultdict(list)
    for r in await fetch(
        f"SELECT l.member, l.points, l.expires_on FROM {LOTS} l WHERE l.member {cond}"
        " AND l.expires_on >= {} AND l.expires_on <= {} ORDER BY l.member, l.expires_on",
        *args,
        today,
        until,
    ):
        found[int(r["member"])].append(
            ExpiringPoints(int(r["points"]), clock.as_date(r["expires_on"]))
        )
    return dict(found)


async def member_profile(
    store_ids: frozenset[int] | None, member_id: int, offset: int, limit: int
) -> MemberProfile:
    """The member at a glance, for people of the member's home store (``store_ids``;
    None: any store). Another store's member is not found."""
    members = await fetch(
        "SELECT m.id, m.name, m.phone, m.home_store, m.joined_on, m.do_not_contact,"
        " m.wrong_number_at, m.points_balance, m.tier, m.tier_year, s.code AS store_code,"
        " s.timezone,"
        " a.code AS advisor_code FROM member m JOIN store s ON s.id = m.home_store"
        " LEFT JOIN advisor a ON a.id = m.owning_advisor WHERE m.id = {}",
        member_id,
    )
    if not members or (store_ids is not None and members[0]["home_store"] not in store_ids):
        raise NotFound(f"no member {member_id} at your store")
    m = members[0]
    today = clock.today(clock.zone(m["timezone"]))
    purchases, total = await _purchase_page(member_id, offset, limit)
    return MemberProfile(
        member_id=m["id"],
        name=m["name"],
        phone=m["phone"],
        home_store=m["store_code"],
        owning_advisor=m["advisor_code"],
        joined_on=clock.as_date(m["joined_on"]),
        do_not_contact=bool(m["do_not_contact"]),
        wrong_number_reported=m["wrong_number_at"] is not None,
        babies=(await babies_of_members([member_id], today)).get(member_id, []),
        points_balance=m["points_balance"],
        **await tier_and_lots(member_id, m["tier"], m["tier_year"], today),
        ledger=await _ledger_tail(member_id),
        purchases=purchases,
        purchases_total=total,
        repeat_within_90_days=await _latest_is_repeat(member_id),
    )


async def _ledger_tail(member_id: int) -> list[LedgerEntry]:
    rows = await fetch(
        "SELECT l.kind, l.points, l.occurred_at, s.code FROM points_ledger l"
        " JOIN store s ON s.id = l.store WHERE l.member = {} ORDER BY l.id DESC LIMIT 10",
        member_id,
    )
    return [LedgerEntry(r["kind"], r["points"], r["occurred_at"], r["code"]) for r in rows]


async def _purchase_page(member_id: int, offset: int, limit: int) -> tuple[list[PurchaseView], int]:
    purchases = await fetch(
        "SELECT p.id, p.receipt_id, p.purchased_at, p.total_fen, p.points_earned, s.code"
        " FROM purchase p JOIN store s ON s.id = p.store WHERE p.member = {}"
        " ORDER BY p.purchased_at DESC, p.id DESC LIMIT {} OFFSET {}",
        member_id,
        limit,
        offset,
    )
    counted = await fetch("SELECT COUNT(*) AS n FROM purchase WHERE member = {}", member_id)
    lines = await rows_by(
        "purchase",
        "SELECT l.purchase, pr.sku, pr.name, l.quantity, l.amount_fen FROM purchase_line l"
        " JOIN product pr ON pr.id = l.product WHERE l.purchase {ids} ORDER BY l.line_no",
        [p["id"] for p in purchases],
    )
    views = [
        PurchaseView(
            purchase_id=p["id"],
            receipt_id=p["receipt_id"],
            store_code=p["code"],
            purchased_at=p["purchased_at"],
            total=str(fen_to_yuan(p["total_fen"])),
            points_earned=p["points_earned"],
            lines=[
                PurchaseLineView(
                    line["sku"], line["name"], line["quantity"], yuan_text(line["amount_fen"])
                )
                for line in lines.get(p["id"], [])
            ],
        )
        for p in purchases
    ]
    return views, int(counted[0]["n"])


async def _latest_is_repeat(member_id: int) -> bool:
    """RN3's flag of the latest purchase: within 90 days of the one before it."""
    latest = await fetch(
        "SELECT repeat FROM purchase WHERE member = {} ORDER BY purchased_at DESC, id DESC LIMIT 1",
        member_id,
    )
    return bool(latest and latest[0]["repeat"])
