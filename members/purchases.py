"""Receipts written: a till's batch, a group commit of single receipts from several
tills, or a chunk of imported history, in one transaction of a fixed number of
set-based statements, whatever the number of receipts or stores (``members.tills``
checks and answers them).

Each receipt is answered on its own: ``created``, ``duplicate`` (the same receipt
again: the first answer is returned) or ``rejected`` with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core import clock
from core.db import (
    LostRace,
    fetch,
    in_list,
    is_postgres,
    param,
    rows_source,
)
from core.events import bus
from members.events import (
    BoughtLine,
    MemberImported,
    MemberJoined,
    PurchaseImported,
    PurchaseRecorded,
)
from members.figures import mark_repeats
from members.points import Earning, book_earnings
from members.policy import PointsRule, Policy, load_policy
from members.promotions import extra_points
from members.receipts import (
    Receipt,
    answer,
    rejected,
    reused_receipt,
)
from members.repeats import repeat_flags
from members.schemas import ReceiptResult
from members.tiers import effective_tier, refresh_tiers

Key = tuple[int, str]  # (store, receipt id): a receipt id is unique within its store


@dataclass(frozen=True, slots=True)
class History:
    """Receipts of the chain's past, imported: points at the policy in force on their
    day, no tasks, no pushes, and score facts only when asked for (``score``)."""

    score: bool
    policies: tuple[tuple[datetime, Policy], ...]  # (in force from, policy), oldest first
    # The members a chunk's receipts touched: their RN3 flags and tiers are worked out
    # once for the chunk (``finish_history``), not once per store in it.
    touched: set[int] = field(default_factory=set)

    def policy_at(self, at: datetime) -> Policy:
        chosen = self.policies[0][1]
        for since, policy in self.policies:
            if since <= at:
                chosen = policy
        return chosen


@dataclass(slots=True)
class _Batch:
    """The receipts being written and what the steps learn about them."""

    receipts: list[Receipt]
    points: dict[Key, int]
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_receipt: dict[str, Receipt] = field(default_factory=dict)
    purchase_ids: dict[Key, int] = field(default_factory=dict)
    # Per receipt, each line's promotion extra and the promotion that gave it.
    bonus: dict[Key, list[tuple[int, int | None]]] = field(default_factory=dict)

    def promotion_extra(self, r: Receipt) -> tuple[int, int | None]:
        """The receipt's promotion extra, and the promotion behind most of it."""
        lines = self.bonus.get(r.key, [])
        top = max(lines, key=lambda line: line[0], default=(0, None))
        return sum(points for points, _ in lines), top[1] if top[0] else None

    def member_id(self, r: Receipt) -> int:
        return int(self.members[r.phone]["id"])

    def credited(self, r: Receipt) -> int | None:
        owner: int | None = self.members[r.phone]["owning_advisor"]
        return r.advisor_id if r.advisor_id is not None else owner


# --- the transaction -------------------------------------------------------------


async def record_receipts(
    receipts: list[Receipt], rule: PointsRule, history: History | None = None
) -> dict[Key, ReceiptResult]:
    """1. replays answered; 2. new members joined; 3. balances and the member's latest
    purchase; 4. receipt ids claimed; 5. lines and the points ledger; 6. told. The till
    sends one store's receipts; imported history, a chunk's stores at once: each row
    carries its store, so the statements are as many for a hundred stores as for one."""
    if is_postgres() and (history is None or not history.touched):
        # Batch statements work on hundreds of rows at a time, so planning each afresh
        # costs little, while a generic plan cached when a table was small (a new
        # deployment) can stay a sequential scan for good.
        await fetch("SET LOCAL plan_cache_mode = force_custom_plan")
    answers, new = await _replays(receipts)
    if not new:
        return answers
    batch = _Batch(new, {r.key: rule.points_for(r.eligible_fen) for r in new})
    joined = await _join_new_members(batch)
    await _promotions(batch, rule)
    repeats, late = repeat_flags(batch.receipts, batch.members.values(), batch.member_id)
    balance_after = _balances_after(batch, await _update_members(batch))
    for row in await _claim_receipts(batch, balance_after, repeats):
        answers[(row["store"], row["receipt_id"])] = answer(row, "created")
    await _write_lines(batch)
    members = sorted({batch.member_id(r) for r in new})
    earned = [r for r in new if batch.points[r.key]]
    if history is not None:
        history.touched.update(members)
        await _book_history(batch, earned, history)
        if history.score:
            await _announce(batch, joined, imported=True)
        return answers
    await mark_repeats(late)
    policy = await load_policy()
    await book_earnings([_earning(batch, r) for r in earned], policy)
    zones: dict[Any, set[int]] = defaultdict(set)  # a group commit's stores may differ
    for r in new:
        zones[r.store.tz].add(batch.member_id(r))
    risen = []
    for zone, in_zone in zones.items():
        risen += await refresh_tiers(sorted(in_zone), clock.today(zone), policy)
    await _announce(batch, joined)
    await bus.publish(risen)
    return answers


async def _book_history(batch: _Batch, earned: list[Receipt], history: History) -> None:
    """Imported earnings at the policy in force on their day, a statement a policy."""
    by_policy: dict[int, list[Receipt]] = defaultdict(list)
    for r in earned:
        by_policy[id(history.policy_at(r.purchased_at))].append(r)
    for group in by_policy.values():
        await book_earnings(
            [_earning(batch, r) for r in group], history.policy_at(group[0].purchased_at)
        )


async def _promotions(batch: _Batch, rule: PointsRule) -> None:
    """Each line's promotion extra, by the member's tier before this batch."""
    tiers = {
        phone: effective_tier(
            m["tier"], m["tier_year"], clock.today(batch.first_receipt[phone].store.tz)
        )
        for phone, m in batch.members.items()
    }
    batch.bonus = await extra_points(batch.receipts, tiers, rule)
    for r in batch.receipts:
        batch.points[r.key] += batch.promotion_extra(r)[0]


def _earning(batch: _Batch, r: Receipt) -> Earning:
    bonus, promotion = batch.promotion_extra(r)
    return Earning(
        member_id=batch.member_id(r),
        store_id=r.store.id,
        points=batch.points[r.key],
        bonus=bonus,
        promotion=promotion,
        purchase_id=batch.purchase_ids[r.key],
        occurred_at=r.purchased_at,
        occurred_on=r.purchased_on,
    )


async def _replays(receipts: list[Receipt]) -> tuple[dict[Key, ReceiptResult], list[Receipt]]:
    """Receipts their store already sent get the first answer, or a conflict."""
    answers: dict[Key, ReceiptResult] = {}
    stores, store_args = in_list(sorted({r.store.id for r in receipts}), "int")
    ids, id_args = in_list(sorted({r.receipt_id for r in receipts}), "text")
    # Several stores: the (store, receipt id) pairs are picked out of both lists here.
    existing = {
        (row["store"], row["receipt_id"]): row
        for row in await fetch(
            "SELECT id, store, receipt_id, request_hash, points_earned, points_balance_after"
            f" FROM purchase WHERE store {stores} AND receipt_id {ids}",
            *store_args,
            *id_args,
        )
    }
    new: list[Receipt] = []
    for r in receipts:
        row = existing.get(r.key)
        if row is None:
            new.append(r)
        elif row["request_hash"] == r.hash:
            answers[r.key] = answer(row, "duplicate")
        else:
            answers[r.key] = rejected(r.receipt_id, reused_receipt(r.receipt_id))
    return answers, new


async def _join_new_members(batch: _Batch) -> list[dict[str, Any]]:
    """An unknown phone joins at the store of its first receipt, recruited by that
    receipt's advisor. Every
    phone is offered for insert first, in phone order, and only then are all of them
    locked, in id order: two batches sharing members wait for each other in one order
    and cannot deadlock. Returns the members who joined."""
    for r in sorted(batch.receipts, key=lambda r: r.purchased_at):
        batch.first_receipt.setdefault(r.phone, r)
    source, args = rows_source(
        [
            ("phone", "text"),
            ("store", "int"),
            ("advisor", "int"),
            ("joined_at", "timestamptz"),
            ("joined_on", "date"),
        ],
        [
            (p, r.store.id, r.advisor_id, r.purchased_at, r.purchased_on)
            for p, r in sorted(batch.first_receipt.items())
        ],
    )
    joined = await fetch(
        "INSERT INTO member (phone, name, home_store, owning_advisor, recruited_by,"
        " joined_at, joined_on, do_not_contact, points_balance, created_at)"
        " SELECT phone, '', store, advisor, advisor, joined_at, joined_on, false, 0,"
        f" {param('timestamptz')} FROM ({source}) AS src WHERE true ORDER BY phone"
        " ON CONFLICT (phone) DO NOTHING RETURNING id, phone",
        clock.now(),
        *args,
    )
    batch.members = await _lock_members(set(batch.first_receipt))
    return joined


async def _lock_members(phones: set[str]) -> dict[str, dict[str, Any]]:
    cond, args = in_list(sorted(phones), "text")
    # Lock the rows in one order (PostgreSQL) so that two batches touching the
    # same members queue instead of deadlocking on the balance update.
    lock = " ORDER BY id FOR UPDATE" if is_postgres() else ""
    rows = await fetch(
        "SELECT id, phone, owning_advisor, points_balance, tier, tier_year, last_purchased_at,"
        " last_purchase_on FROM member"
        f" WHERE phone {cond}{lock}",
        *args,
    )
    return {row["phone"]: row for row in rows}


async def _update_members(batch: _Batch) -> dict[int, int]:
    """Points, the latest purchase and the latest formula stage: one UPDATE over every
    member of the batch (the daily run reads the last two, never purchases). Returns
    each member's balance after the batch."""
    delta: dict[int, int] = defaultdict(int)
    latest: dict[int, Receipt] = {}
    latest_formula: dict[int, Receipt] = {}
    for r in batch.receipts:
        mid = batch.member_id(r)
        delta[mid] += batch.points[r.key]
        if mid not in latest or latest[mid].purchased_at < r.purchased_at:
            latest[mid] = r
        if r.formula_stage is not None and (
            mid not in latest_formula or latest_formula[mid].purchased_at < r.purchased_at
        ):
            latest_formula[mid] = r
    source, args = rows_source(
        [
            ("member_id", "bigint"),
            ("delta", "int"),
            ("at", "timestamptz"),
            ("on_day", "date"),
            ("formula_at", "timestamptz"),
            ("formula_stage", "int"),
        ],
        [
            (
                mid,
                delta[mid],
                r.purchased_at,
                r.purchased_on,
                latest_formula[mid].purchased_at if mid in latest_formula else None,
                latest_formula[mid].formula_stage if mid in latest_formula else None,
            )
            for mid, r in sorted(latest.items())
        ],
    )
    newer = "member.last_purchased_at IS NULL OR member.last_purchased_at < d.at"
    newer_formula = (
        "d.formula_at IS NOT NULL AND (member.last_formula_at IS NULL"
        " OR member.last_formula_at < d.formula_at)"
    )
    rows = await fetch(
        "UPDATE member SET points_balance = member.points_balance + d.delta,"
        f" last_purchased_at = CASE WHEN {newer} THEN d.at ELSE member.last_purchased_at END,"
        f" last_purchase_on = CASE WHEN {newer} THEN d.on_day ELSE member.last_purchase_on END,"
        f" last_formula_at = CASE WHEN {newer_formula} THEN d.formula_at"
        " ELSE member.last_formula_at END,"
        f" last_formula_stage = CASE WHEN {newer_formula} THEN d.formula_stage"
        " ELSE member.last_formula_stage END"
        f" FROM ({source}) AS d WHERE member.id = d.member_id"
        " RETURNING member.id, member.points_balance",
        *args,
    )
    return {row["id"]: row["points_balance"] for row in rows}


def _balances_after(batch: _Batch, balances: dict[int, int]) -> dict[Key, int]:
    """Walk each member's receipts backwards from the final balance to get the balance
    right after each one: the answer a replay of that receipt gets."""
    balance_after: dict[Key, int] = {}
    running = dict(balances)
    for r in sorted(batch.receipts, key=lambda r: (r.purchased_at, r.position), reverse=True):
        mid = batch.member_id(r)
        balance_after[r.key] = running[mid]
        running[mid] -= batch.points[r.key]
    return balance_after


async def _claim_receipts(
    batch: _Batch, balance_after: dict[Key, int], repeats: dict[Key, bool]
) -> list[dict[str, Any]]:
    """Claim the receipt ids. A concurrent writer that claimed one first means this
    whole event is replayed, and the replay check then answers it as a duplicate."""
    source, args = rows_source(
        [
            ("store", "int"),
            ("receipt_id", "text"),
            ("member", "bigint"),
            ("advisor", "int"),
            ("purchased_at", "timestamptz"),
            ("purchased_on", "date"),
            ("total_fen", "bigint"),
            ("eligible_fen", "bigint"),
            ("points_earned", "int"),
            ("bonus_points", "int"),
            ("balance_after", "int"),
            ("request_hash", "text"),
            ("repeat", "boolean"),
        ],
        [
            (
                r.store.id,
                r.receipt_id,
                batch.member_id(r),
                batch.credited(r),
                r.purchased_at,
                r.purchased_on,
                r.total_fen,
                r.eligible_fen,
                batch.points[r.key],
                batch.promotion_extra(r)[0],
                balance_after[r.key],
                r.hash,
                repeats.get(r.key, False),
            )
            for r in sorted(batch.receipts, key=lambda r: r.key)
        ],
    )
    claimed = await fetch(
        "INSERT INTO purchase (store, receipt_id, member, advisor, purchased_at, purchased_on,"
        " total_fen, eligible_fen, points_earned, bonus_points, points_balance_after,"
        " request_hash, repeat, created_at)"
        " SELECT store, receipt_id, member, advisor, purchased_at, purchased_on,"
        " total_fen, eligible_fen, points_earned, bonus_points, balance_after, request_hash,"
        f" repeat, {param('timestamptz')} FROM ({source}) AS src"
        " WHERE true ON CONFLICT (store, receipt_id) DO NOTHING"
        " RETURNING id, store, receipt_id, points_earned, points_balance_after",
        clock.now(),
        *args,
    )
    if len(claimed) != len(batch.receipts):
        raise LostRace()
    batch.purchase_ids = {(row["store"], row["receipt_id"]): row["id"] for row in claimed}
    return claimed


async def _write_lines(batch: _Batch) -> None:
    source, args = rows_source(
        [
            ("purchase", "bigint"),
            ("line_no", "int"),
            ("product", "int"),
            ("quantity", "int"),
            ("amount_fen", "bigint"),
            ("bonus_points", "int"),
            ("promotion", "int"),
        ],
        [
            (batch.purchase_ids[r.key], i + 1, product.id, qty, fen, *bonus)
            for r in batch.receipts
            for i, ((_, qty, fen), product, bonus) in enumerate(
                zip(r.lines, r.products, batch.bonus[r.key], strict=True)
            )
        ],
    )
    await fetch(
        "INSERT INTO purchase_line (purchase, line_no, product, quantity, amount_fen,"
        " bonus_points, promotion) SELECT purchase, line_no, product, quantity, amount_fen,"
        f" bonus_points, promotion FROM ({source}) AS src",
        *args,
    )


async def _announce(batch: _Batch, joined: list[dict[str, Any]], imported: bool = False) -> None:
    """Tell the playbook, conversion and the score ledger, in the same transaction
    (history: the score ledger alone, by the imported events)."""
    joined_event = MemberImported if imported else MemberJoined
    bought_event = PurchaseImported if imported else PurchaseRecorded
    await bus.publish(
        [
            joined_event(
                row["id"],
                batch.first_receipt[row["phone"]].store.id,
                batch.first_receipt[row["phone"]].purchased_on,
                False,
                batch.first_receipt[row["phone"]].advisor_id,
            )
            for row in joined
        ]
    )
    await bus.publish(
        [
            bought_event(
                purchase_id=batch.purchase_ids[r.key],
                member_id=batch.member_id(r),
                store_id=r.store.id,
                advisor_id=batch.credited(r),
                purchased_at=r.purchased_at,
                purchased_on=r.purchased_on,
                total_fen=r.total_fen,
                points_earned=batch.points[r.key],
                lines=tuple(
                    BoughtLine(p.id, qty, p.category, p.days_of_supply, p.stage)
                    for (_, qty, _), p in zip(r.lines, r.products, strict=True)
                ),
            )
            for r in batch.receipts
        ]
    )
