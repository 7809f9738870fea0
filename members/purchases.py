"""Receipts from the till: one or a batch of up to 500 for one store, in one
transaction of a fixed number of set-based statements, whatever the batch size.

Each receipt is answered on its own: ``created``, ``duplicate`` (the same receipt
again: the first answer is returned) or ``rejected`` with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import msgspec

from core import clock
from core.db import LostRace, fetch, in_list, in_write_transaction, is_postgres, param, rows_source
from core.errors import Conflict, FieldError, InvalidInput, msgspec_field_error
from core.events import bus
from core.money import request_hash, to_fen
from members.events import BoughtLine, MemberJoined, PurchaseRecorded
from members.phones import phone_or_error
from members.points import PointsRule, book_earnings
from members.schemas import PurchaseIn, PurchaseOut, ReceiptResult
from members.stores import StoreRef, event_instant, store_advisors

# A receipt's points, and so a balance, stay far inside a 32-bit integer.
MAX_RECEIPT_POINTS = 10_000_000
REUSED_RECEIPT = FieldError("receipt_id", "already used for a different receipt")


@dataclass(frozen=True, slots=True)
class ProductInfo:
    id: int
    points_eligible: bool
    category: str
    stage: int | None  # formula only
    days_of_supply: int | None


@dataclass(slots=True)
class _Receipt:
    position: int
    receipt_id: str
    phone: str
    advisor_code: str | None
    purchased_at: datetime
    purchased_on: date
    lines: list[tuple[str, int, int]]  # sku, quantity, amount in fen
    hash: str
    advisor_id: int | None = None
    products: list[ProductInfo] = field(default_factory=list)
    eligible_fen: int = 0
    formula_stage: int | None = None  # the highest formula stage on the receipt

    @property
    def total_fen(self) -> int:
        return sum(fen for _, _, fen in self.lines)


@dataclass(slots=True)
class _Batch:
    """The receipts being written and what the steps learn about them."""

    store: StoreRef
    receipts: list[_Receipt]
    points: dict[str, int]
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_receipt: dict[str, _Receipt] = field(default_factory=dict)
    purchase_ids: dict[str, int] = field(default_factory=dict)

    def member_id(self, r: _Receipt) -> int:
        return int(self.members[r.phone]["id"])

    def credited(self, r: _Receipt) -> int | None:
        owner: int | None = self.members[r.phone]["owning_advisor"]
        return r.advisor_id if r.advisor_id is not None else owner


# --- checking receipts ---------------------------------------------------------


def _prepare(store: StoreRef, raw: Any, position: int) -> _Receipt:
    """Check one receipt on its own; raises InvalidInput naming the field."""
    try:
        data = (
            raw if isinstance(raw, PurchaseIn) else msgspec.convert(raw, PurchaseIn, strict=False)
        )
    except msgspec.ValidationError as exc:
        error = msgspec_field_error(exc)
        raise InvalidInput(f"{error.field}: {error.message}", [error]) from None
    phone = phone_or_error(data.member_phone, "member_phone")
    purchased_at = event_instant(data.purchased_at, store, "purchased_at")
    lines = [
        (line.sku, line.quantity, to_fen(line.amount, f"lines[{i}].amount"))
        for i, line in enumerate(data.lines)
    ]
    return _Receipt(
        position=position,
        receipt_id=data.receipt_id,
        phone=phone,
        advisor_code=data.advisor_code,
        purchased_at=purchased_at,
        purchased_on=clock.local_date(purchased_at, store.tz),
        lines=lines,
        hash=request_hash(
            data.receipt_id, phone, data.advisor_code, purchased_at.isoformat(), lines
        ),
    )


def _receipt_id_of(raw: Any) -> str:
    if isinstance(raw, PurchaseIn):
        return raw.receipt_id
    value = raw.get("receipt_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else ""


def _rejected(receipt_id: str, error: InvalidInput | Conflict) -> ReceiptResult:
    return ReceiptResult(
        receipt_id=receipt_id, status="rejected", error=error.detail, errors=error.errors or None
    )


def _reused_receipt(receipt_id: str) -> Conflict:
    return Conflict(
        f"receipt_id {receipt_id} was already used for a different receipt", [REUSED_RECEIPT]
    )


async def products_by_sku(skus: set[str]) -> dict[str, ProductInfo]:
    if not skus:
        return {}
    cond, args = in_list(sorted(skus), "text")
    rows = await fetch(
        "SELECT id, sku, points_eligible, category, stage, days_of_supply FROM product"
        f" WHERE sku {cond}",
        *args,
    )
    return {
        r["sku"]: ProductInfo(
            id=r["id"],
            points_eligible=bool(r["points_eligible"]),
            category=r["category"],
            stage=r["stage"] if r["category"] == "formula" else None,
            days_of_supply=r["days_of_supply"],
        )
        for r in rows
    }


def _answer(row: dict[str, Any], status: str) -> ReceiptResult:
    return ReceiptResult(
        receipt_id=row["receipt_id"],
        status="created" if status == "created" else "duplicate",
        purchase_id=row["id"],
        points_earned=row["points_earned"],
        points_balance=row["points_balance_after"],
    )


def _split_repeats(
    store: StoreRef, raws: Sequence[Any], results: list[ReceiptResult | None]
) -> tuple[list[_Receipt], list[_Receipt], dict[str, _Receipt]]:
    """The batch's receipts checked one by one: the first of each id, its exact
    repeats inside the batch, and (in ``results``) the ones refused outright."""
    accepted: list[_Receipt] = []
    repeats: list[_Receipt] = []
    first_by_id: dict[str, _Receipt] = {}
    for position, raw in enumerate(raws):
        try:
            receipt = _prepare(store, raw, position)
        except InvalidInput as exc:
            results[position] = _rejected(_receipt_id_of(raw), exc)
            continue
        first = first_by_id.get(receipt.receipt_id)
        if first is None:
            first_by_id[receipt.receipt_id] = receipt
            accepted.append(receipt)
        elif first.hash != receipt.hash:
            results[position] = _rejected(receipt.receipt_id, _reused_receipt(receipt.receipt_id))
        else:
            repeats.append(receipt)
    return accepted, repeats, first_by_id


async def _resolve(
    store: StoreRef, accepted: list[_Receipt], rule: PointsRule, results: list[Any]
) -> list[_Receipt]:
    """Receipts whose SKUs and advisor are known, with their products, eligible spend
    and highest formula stage; the rest are rejected in ``results``."""
    products = await products_by_sku({sku for r in accepted for sku, _, _ in r.lines})
    advisors = await store_advisors(store, {r.advisor_code for r in accepted if r.advisor_code})
    valid: list[_Receipt] = []
    for r in accepted:
        unknown = [i for i, (sku, _, _) in enumerate(r.lines) if sku not in products]
        advisor = advisors.get(r.advisor_code) if r.advisor_code else None
        if unknown:
            errs = [FieldError(f"lines[{i}].sku", f"unknown SKU {r.lines[i][0]}") for i in unknown]
            results[r.position] = _rejected(r.receipt_id, InvalidInput(errs[0].message, errs))
            continue
        if isinstance(advisor, str):
            results[r.position] = _rejected(r.receipt_id, InvalidInput.on("advisor_code", advisor))
            continue
        r.advisor_id = advisor
        r.products = [products[sku] for sku, _, _ in r.lines]
        r.eligible_fen = sum(
            fen for (_, _, fen), p in zip(r.lines, r.products, strict=True) if p.points_eligible
        )
        if rule.points_for(r.eligible_fen) > MAX_RECEIPT_POINTS:
            too_large = InvalidInput.on("lines", "the receipt is too large for one purchase")
            results[r.position] = _rejected(r.receipt_id, too_large)
            continue
        stages = [p.stage for p in r.products if p.stage is not None]
        r.formula_stage = max(stages) if stages else None
        valid.append(r)
    return valid


async def ingest_purchases(
    store: StoreRef, raws: Sequence[Any], rule: PointsRule
) -> list[ReceiptResult]:
    """Record up to a batch of receipts for one store in one transaction."""
    results: list[ReceiptResult | None] = [None] * len(raws)
    accepted, repeats, first_by_id = _split_repeats(store, raws, results)
    valid = await _resolve(store, accepted, rule, results)
    if valid:
        answers = await in_write_transaction(lambda: _record(store, valid, rule))
        for r in valid:
            results[r.position] = answers[r.receipt_id]
    for r in repeats:
        first_answer = results[first_by_id[r.receipt_id].position]
        assert first_answer is not None
        results[r.position] = (
            msgspec.structs.replace(first_answer, status="duplicate")
            if first_answer.status != "rejected"
            else first_answer
        )
    return [r for r in results if r is not None]


async def record_purchase(store: StoreRef, raw: Any, rule: PointsRule) -> tuple[bool, PurchaseOut]:
    """One receipt. Returns (created, answer); a replay gives the first answer."""
    (result,) = await ingest_purchases(store, [raw], rule)
    if result.status == "rejected":
        errors = result.errors or []
        if errors == [REUSED_RECEIPT]:
            raise Conflict(result.error or "conflict", errors)
        raise InvalidInput(result.error or "invalid receipt", errors)
    assert result.purchase_id is not None
    assert result.points_earned is not None and result.points_balance is not None
    return result.status == "created", PurchaseOut(
        purchase_id=result.purchase_id,
        points_earned=result.points_earned,
        points_balance=result.points_balance,
    )


# --- the transaction -------------------------------------------------------------


async def _record(
    store: StoreRef, receipts: list[_Receipt], rule: PointsRule
) -> dict[str, ReceiptResult]:
    """1. replays answered; 2. new members joined; 3. balances and the member's latest
    purchase; 4. receipt ids claimed; 5. lines and the points ledger; 6. told."""
    if is_postgres():
        # Batch statements work on hundreds of rows at a time, so planning each afresh
        # costs little, while a generic plan cached when a table was small (a new
        # deployment) can stay a sequential scan for good.
        await fetch("SET LOCAL plan_cache_mode = force_custom_plan")
    answers, new = await _replays(store, receipts)
    if not new:
        return answers
    batch = _Batch(store, new, {r.receipt_id: rule.points_for(r.eligible_fen) for r in new})
    joined = await _join_new_members(batch)
    balance_after = _balances_after(batch, await _update_members(batch))
    for row in await _claim_receipts(batch, balance_after):
        answers[row["receipt_id"]] = _answer(row, "created")
    await _write_lines(batch)
    await book_earnings(
        store.id,
        [
            (
                batch.member_id(r),
                batch.points[r.receipt_id],
                batch.purchase_ids[r.receipt_id],
                r.purchased_at,
                r.purchased_on,
            )
            for r in new
            if batch.points[r.receipt_id] > 0
        ],
    )
    await _announce(batch, joined)
    return answers


async def _replays(
    store: StoreRef, receipts: list[_Receipt]
) -> tuple[dict[str, ReceiptResult], list[_Receipt]]:
    """Receipts this store already sent get the first answer, or a conflict."""
    answers: dict[str, ReceiptResult] = {}
    cond, args = in_list([r.receipt_id for r in receipts], "text")
    existing = {
        row["receipt_id"]: row
        for row in await fetch(
            "SELECT id, receipt_id, request_hash, points_earned, points_balance_after"
            f" FROM purchase WHERE store = {{}} AND receipt_id {cond}",
            store.id,
            *args,
        )
    }
    new: list[_Receipt] = []
    for r in receipts:
        row = existing.get(r.receipt_id)
        if row is None:
            new.append(r)
        elif row["request_hash"] == r.hash:
            answers[r.receipt_id] = _answer(row, "duplicate")
        else:
            answers[r.receipt_id] = _rejected(r.receipt_id, _reused_receipt(r.receipt_id))
    return answers, new


async def _join_new_members(batch: _Batch) -> list[dict[str, Any]]:
    """An unknown phone joins at this store, recruited by the receipt's advisor. Every
    phone is offered for insert first, in phone order, and only then are all of them
    locked, in id order: two batches sharing members wait for each other in one order
    and cannot deadlock. Returns the members who joined."""
    for r in sorted(batch.receipts, key=lambda r: r.purchased_at):
        batch.first_receipt.setdefault(r.phone, r)
    source, args = rows_source(
        [
            ("phone", "text"),
            ("advisor", "int"),
            ("joined_at", "timestamptz"),
            ("joined_on", "date"),
        ],
        [
            (p, r.advisor_id, r.purchased_at, r.purchased_on)
            for p, r in sorted(batch.first_receipt.items())
        ],
    )
    joined = await fetch(
        "INSERT INTO member (phone, name, home_store, owning_advisor, recruited_by,"
        " joined_at, joined_on, do_not_contact, points_balance, created_at)"
        f" SELECT phone, '', {param('int')}, advisor, advisor, joined_at, joined_on, false, 0,"
        f" {param('timestamptz')} FROM ({source}) AS src WHERE true ORDER BY phone"
        " ON CONFLICT (phone) DO NOTHING RETURNING id, phone",
        batch.store.id,
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
        f"SELECT id, phone, owning_advisor, points_balance FROM member WHERE phone {cond}{lock}",
        *args,
    )
    return {row["phone"]: row for row in rows}


async def _update_members(batch: _Batch) -> dict[int, int]:
    """Points, the latest purchase and the latest formula stage: one UPDATE over every
    member of the batch (the daily run reads the last two, never purchases). Returns
    each member's balance after the batch."""
    delta: dict[int, int] = defaultdict(int)
    latest: dict[int, _Receipt] = {}
    latest_formula: dict[int, _Receipt] = {}
    for r in batch.receipts:
        mid = batch.member_id(r)
        delta[mid] += batch.points[r.receipt_id]
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


def _balances_after(batch: _Batch, balances: dict[int, int]) -> dict[str, int]:
    """Walk each member's receipts backwards from the final balance to get the balance
    right after each one: the answer a replay of that receipt gets."""
    balance_after: dict[str, int] = {}
    running = dict(balances)
    for r in sorted(batch.receipts, key=lambda r: (r.purchased_at, r.position), reverse=True):
        mid = batch.member_id(r)
        balance_after[r.receipt_id] = running[mid]
        running[mid] -= batch.points[r.receipt_id]
    return balance_after


async def _claim_receipts(batch: _Batch, balance_after: dict[str, int]) -> list[dict[str, Any]]:
    """Claim the receipt ids. A concurrent writer that claimed one first means this
    whole event is replayed, and the replay check then answers it as a duplicate."""
    source, args = rows_source(
        [
            ("receipt_id", "text"),
            ("member", "bigint"),
            ("advisor", "int"),
            ("purchased_at", "timestamptz"),
            ("purchased_on", "date"),
            ("total_fen", "bigint"),
            ("eligible_fen", "bigint"),
            ("points_earned", "int"),
            ("balance_after", "int"),
            ("request_hash", "text"),
        ],
        [
            (
                r.receipt_id,
                batch.member_id(r),
                batch.credited(r),
                r.purchased_at,
                r.purchased_on,
                r.total_fen,
                r.eligible_fen,
                batch.points[r.receipt_id],
                balance_after[r.receipt_id],
                r.hash,
            )
            for r in sorted(batch.receipts, key=lambda r: r.receipt_id)
        ],
    )
    claimed = await fetch(
        "INSERT INTO purchase (store, receipt_id, member, advisor, purchased_at, purchased_on,"
        " total_fen, eligible_fen, points_earned, points_balance_after, request_hash, created_at)"
        f" SELECT {param('int')}, receipt_id, member, advisor, purchased_at, purchased_on,"
        " total_fen, eligible_fen, points_earned, balance_after, request_hash,"
        f" {param('timestamptz')} FROM ({source}) AS src"
        " WHERE true ON CONFLICT (store, receipt_id) DO NOTHING"
        " RETURNING id, receipt_id, points_earned, points_balance_after",
        batch.store.id,
        clock.now(),
        *args,
    )
    if len(claimed) != len(batch.receipts):
        raise LostRace()
    batch.purchase_ids = {row["receipt_id"]: row["id"] for row in claimed}
    return claimed


async def _write_lines(batch: _Batch) -> None:
    source, args = rows_source(
        [
            ("purchase", "bigint"),
            ("line_no", "int"),
            ("product", "int"),
            ("quantity", "int"),
            ("amount_fen", "bigint"),
        ],
        [
            (batch.purchase_ids[r.receipt_id], i + 1, product.id, qty, fen)
            for r in batch.receipts
            for i, ((_, qty, fen), product) in enumerate(zip(r.lines, r.products, strict=True))
        ],
    )
    await fetch(
        "INSERT INTO purchase_line (purchase, line_no, product, quantity, amount_fen)"
        f" SELECT purchase, line_no, product, quantity, amount_fen FROM ({source}) AS src",
        *args,
    )


async def _announce(batch: _Batch, joined: list[dict[str, Any]]) -> None:
    """Tell the playbook, conversion and the score ledger, in the same transaction."""
    await bus.publish(
        [
            MemberJoined(
                row["id"],
                batch.store.id,
                batch.first_receipt[row["phone"]].purchased_on,
                False,
                batch.first_receipt[row["phone"]].advisor_id,
            )
            for row in joined
        ]
    )
    await bus.publish(
        [
            PurchaseRecorded(
                purchase_id=batch.purchase_ids[r.receipt_id],
                member_id=batch.member_id(r),
                store_id=batch.store.id,
                advisor_id=batch.credited(r),
                purchased_at=r.purchased_at,
                purchased_on=r.purchased_on,
                total_fen=r.total_fen,
                points_earned=batch.points[r.receipt_id],
                lines=tuple(
                    BoughtLine(p.id, qty, p.category, p.days_of_supply, p.stage)
                    for (_, qty, _), p in zip(r.lines, r.products, strict=True)
                ),
            )
            for r in batch.receipts
        ]
    )
