"""Checking receipts from the till before anything is written: each on its own
(a bad one never sinks the batch), exact repeats inside a batch, unknown SKUs and
advisors, and what each receipt earns and bought."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import msgspec

from core import clock
from core.db import fetch, in_list
from core.errors import Conflict, FieldError, InvalidInput, msgspec_field_error
from core.money import fen_of, request_hash
from members.phones import phone_or_error
from members.policy import PointsRule
from members.schemas import PurchaseIn, ReceiptResult
from members.stores import StoreRef, advisors_at, advisors_by_code, event_instant

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
class Receipt:
    position: int
    receipt_id: str
    phone: str
    advisor_code: str | None
    purchased_at: datetime
    purchased_on: date
    lines: list[tuple[str, int, int]]  # sku, quantity, amount in fen
    hash: str
    store: StoreRef
    advisor_id: int | None = None
    products: list[ProductInfo] = field(default_factory=list)
    eligible_fen: int = 0
    formula_stage: int | None = None  # the highest formula stage on the receipt

    # A receipt id is the till's: unique within its store, not across stores (a chunk
    # of imported history holds several).
    key: tuple[int, str] = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.store.id, self.receipt_id)

    @property
    def total_fen(self) -> int:
        return sum(fen for _, _, fen in self.lines)


def _prepare(store: StoreRef, raw: Any, position: int) -> Receipt:
    """Check one receipt on its own; raises InvalidInput naming the field."""
    try:
        data = raw if isinstance(raw, PurchaseIn) else msgspec.convert(raw, PurchaseIn)
    except msgspec.ValidationError as exc:
        error = msgspec_field_error(exc)
        raise InvalidInput(f"{error.field}: {error.message}", [error]) from None
    phone = phone_or_error(data.member_phone, "member_phone")
    purchased_at = event_instant(data.purchased_at, store, "purchased_at")
    lines = [
        (line.sku, line.quantity, fen_of(line.amount, f"lines[{i}].amount"))
        for i, line in enumerate(data.lines)
    ]
    return Receipt(
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
        store=store,
    )


def receipt_id_of(raw: Any) -> str:
    if isinstance(raw, PurchaseIn):
        return raw.receipt_id
    value = raw.get("receipt_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else ""


def rejected(receipt_id: str, error: InvalidInput | Conflict) -> ReceiptResult:
    return ReceiptResult(
        receipt_id=receipt_id, status="rejected", error=error.detail, errors=error.errors or None
    )


def reused_receipt(receipt_id: str) -> Conflict:
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


def answer(row: dict[str, Any], status: str) -> ReceiptResult:
    return ReceiptResult(
        receipt_id=row["receipt_id"],
        status="created" if status == "created" else "duplicate",
        purchase_id=row["id"],
        points_earned=row["points_earned"],
        points_balance=row["points_balance_after"],
    )


def split_repeats(
    store: StoreRef, raws: Sequence[Any], results: list[ReceiptResult | None]
) -> tuple[list[Receipt], list[Receipt], dict[str, Receipt]]:
    """The batch's receipts checked one by one: the first of each id, its exact
    repeats inside the batch, and (in ``results``) the ones refused outright."""
    accepted: list[Receipt] = []
    repeats: list[Receipt] = []
    first_by_id: dict[str, Receipt] = {}
    for position, raw in enumerate(raws):
        try:
            receipt = _prepare(store, raw, position)
        except InvalidInput as exc:
            results[position] = rejected(receipt_id_of(raw), exc)
            continue
        first = first_by_id.get(receipt.receipt_id)
        if first is None:
            first_by_id[receipt.receipt_id] = receipt
            accepted.append(receipt)
        elif first.hash != receipt.hash:
            results[position] = rejected(receipt.receipt_id, reused_receipt(receipt.receipt_id))
        else:
            repeats.append(receipt)
    return accepted, repeats, first_by_id


@dataclass(frozen=True, slots=True)
class Named:
    """The products and advisors receipts name, read once for all of a chunk's stores
    (an import) instead of once a store."""

    products: dict[str, ProductInfo]
    advisors: dict[str, dict[str, Any]]


async def named_in(skus: set[str], advisor_codes: set[str]) -> Named:
    return Named(await products_by_sku(skus), await advisors_by_code(advisor_codes))


def resolve(
    store: StoreRef, accepted: list[Receipt], rule: PointsRule, results: list[Any], named: Named
) -> list[Receipt]:
    """Receipts whose SKUs and advisor are known (``named``: read once for every store
    of a batch), with their products, eligible spend and highest formula stage; the
    rest are rejected in ``results``."""
    codes = {r.advisor_code for r in accepted if r.advisor_code}
    products, advisors = named.products, advisors_at(store, codes, named.advisors)
    valid: list[Receipt] = []
    for r in accepted:
        unknown = [i for i, (sku, _, _) in enumerate(r.lines) if sku not in products]
        advisor = advisors.get(r.advisor_code) if r.advisor_code else None
        if unknown:
            errs = [FieldError(f"lines[{i}].sku", f"unknown SKU {r.lines[i][0]}") for i in unknown]
            results[r.position] = rejected(r.receipt_id, InvalidInput(errs[0].message, errs))
            continue
        if isinstance(advisor, str):
            results[r.position] = rejected(r.receipt_id, InvalidInput.on("advisor_code", advisor))
            continue
        r.advisor_id = advisor
        r.products = [products[sku] for sku, _, _ in r.lines]
        r.eligible_fen = sum(
            fen for (_, _, fen), p in zip(r.lines, r.products, strict=True) if p.points_eligible
        )
        if rule.points_for(r.eligible_fen) > MAX_RECEIPT_POINTS:
            too_large = InvalidInput.on("lines", "the receipt is too large for one purchase")
            results[r.position] = rejected(r.receipt_id, too_large)
            continue
        stages = [p.stage for p in r.products if p.stage is not None]
        r.formula_stage = max(stages) if stages else None
        valid.append(r)
    return valid
