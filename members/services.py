"""Business rules for members, purchases and points. No HTTP here: callers pass in
the store a till is bound to and get back plain answers or domain errors."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from members import clock, events
from members.db import (
    LostRace,
    fetch,
    in_list,
    in_write_transaction,
    is_postgres,
    param,
    rows_source,
)
from members.errors import Conflict, FieldError, InvalidInput, NotFound, msgspec_field_error
from members.events import MemberJoined, PurchaseRecorded
from members.phones import InvalidPhone, normalise_phone
from members.schemas import (
    BabyOut,
    MemberRegistered,
    MemberRegistration,
    PosMemberOut,
    PurchaseIn,
    PurchaseOut,
    ReceiptResult,
    RedemptionIn,
    RedemptionOut,
)
from members.tables import Advisor, Baby, Member, Store

# A till's clock may run a little fast; beyond this a time is refused as future.
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_LINE_AMOUNT = Decimal("1000000.00")
# A receipt's points, and so a balance, stay far inside a 32-bit integer.
MAX_RECEIPT_POINTS = 10_000_000
# A baby is a child under this many years; an expected date at most this far ahead.
MAX_CHILD_AGE_YEARS = 14
MAX_DUE_AHEAD = timedelta(days=300)
FEN = Decimal("0.01")

# Formula stages by the baby's age in whole months: [0, 6) → 1, [6, 12) → 2,
# [12, 36) → 3, 36 and over → 4.
STAGE_BOUNDARIES_MONTHS = (6, 12, 36)


@dataclass(frozen=True, slots=True)
class StoreRef:
    """The store a POS key or a person acts for."""

    id: int
    code: str
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return clock.zone(self.timezone)


@dataclass(frozen=True, slots=True)
class PointsRule:
    """Points earned per whole yuan of points-eligible spend."""

    points_per_yuan: Decimal = Decimal(1)

    def points_for(self, eligible_fen: int) -> int:
        yuan = Decimal(eligible_fen) / 100
        return int((yuan * self.points_per_yuan).to_integral_value(rounding=ROUND_FLOOR))


# --- small shared rules -----------------------------------------------------


def phone_or_error(raw: str, field_name: str) -> str:
    try:
        return normalise_phone(raw)
    except InvalidPhone as exc:
        raise InvalidInput.on(field_name, str(exc)) from None


def to_fen(amount: Decimal, field_name: str) -> int:
    if not amount.is_finite():
        raise InvalidInput.on(field_name, 'must be a number of yuan such as "259.00"')
    if amount < 0:
        raise InvalidInput.on(field_name, "must not be negative")
    if amount > MAX_LINE_AMOUNT:
        raise InvalidInput.on(field_name, f"must not exceed {MAX_LINE_AMOUNT} yuan")
    if amount != amount.quantize(FEN):
        raise InvalidInput.on(field_name, "must be exact to the fen (at most 2 decimal places)")
    return int(amount * 100)


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(FEN)


def event_instant(value: datetime, store: StoreRef, field_name: str) -> datetime:
    """When something happened at a store: not in the future (beyond a till's clock
    drift) and not before the program could have existed."""
    try:
        instant = clock.as_instant(value, store.tz)
    except ValueError as exc:
        raise InvalidInput.on(field_name, str(exc)) from None
    if instant > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput.on(field_name, "is in the future")
    if instant < EARLIEST_EVENT:
        raise InvalidInput.on(field_name, f"is before {EARLIEST_EVENT.date()}")
    return instant


def age_in_months(birth: date, on: date) -> int:
    months = (on.year - birth.year) * 12 + (on.month - birth.month)
    if on.day < birth.day:
        months -= 1
    return months


def stage_for_age(months: int) -> int:
    return 1 + sum(1 for boundary in STAGE_BOUNDARIES_MONTHS if months >= boundary)


def request_hash(*parts: Any) -> str:
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


# --- stores and advisors as the POS sees them -------------------------------


async def store_by_code(code: str) -> StoreRef:
    row = await Store.select(Store.id, Store.code, Store.timezone).where(Store.code == code).first()
    if row is None:
        raise NotFound(f"no store {code}")
    return StoreRef(id=row["id"], code=row["code"], timezone=row["timezone"])


async def _store_advisors(store: StoreRef, codes: set[str]) -> dict[str, int | str]:
    """Advisor id by code for codes that are active at this store; for others, why not."""
    if not codes:
        return {}
    rows = await Advisor.select(Advisor.id, Advisor.code, Advisor.store, Advisor.active).where(
        Advisor.code.is_in(sorted(codes))
    )
    found: dict[str, int | str] = {}
    for row in rows:
        if row["store"] != store.id:
            found[row["code"]] = f"advisor {row['code']} does not work at store {store.code}"
        elif not row["active"]:
            found[row["code"]] = f"advisor {row['code']} is no longer active"
        else:
            found[row["code"]] = row["id"]
    for code in codes - found.keys():
        found[code] = f"no advisor {code}"
    return found


async def _advisor_id(store: StoreRef, code: str | None) -> int | None:
    if code is None:
        return None
    found = (await _store_advisors(store, {code}))[code]
    if isinstance(found, str):
        raise InvalidInput.on("advisor_code", found)
    return found


# --- member registration ----------------------------------------------------


async def register_member(store: StoreRef, data: MemberRegistration) -> MemberRegistered:
    """Register a member at the till. A phone already known returns the existing
    member unchanged: the chain has one member per phone and credits one recruit."""
    phone = phone_or_error(data.phone, "phone")
    joined_at = event_instant(data.registered_at or clock.now(), store, "registered_at")
    joined_on = clock.local_date(joined_at, store.tz)
    today = clock.today(store.tz)
    for i, baby in enumerate(data.babies):
        if baby.birth_date is None and baby.due_date is None:
            raise InvalidInput.on(f"babies[{i}]", "give birth_date, or due_date before birth")
        if baby.birth_date is not None and baby.birth_date > today:
            raise InvalidInput.on(f"babies[{i}].birth_date", "is in the future")
        if baby.birth_date is not None and today.year - baby.birth_date.year > MAX_CHILD_AGE_YEARS:
            raise InvalidInput.on(
                f"babies[{i}].birth_date", f"is more than {MAX_CHILD_AGE_YEARS} years ago"
            )
        if baby.due_date is not None and not (
            today - MAX_DUE_AHEAD <= baby.due_date <= today + MAX_DUE_AHEAD
        ):
            raise InvalidInput.on(f"babies[{i}].due_date", "is not within 300 days of today")
    advisor_id = await _advisor_id(store, data.advisor_code)

    async def work() -> MemberRegistered:
        inserted = await fetch(
            "INSERT INTO member (phone, name, home_store, owning_advisor, recruited_by,"
            " joined_at, joined_on, do_not_contact, points_balance, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {}, {}, 0, {})"
            " ON CONFLICT (phone) DO NOTHING RETURNING id",
            phone,
            data.name,
            store.id,
            advisor_id,
            advisor_id,
            joined_at,
            joined_on,
            data.do_not_contact,
            clock.now(),
        )
        if not inserted:
            existing = await Member.select(Member.id).where(Member.phone == phone).first()
            if existing is None:  # removed between the two statements: try again
                raise LostRace()
            return MemberRegistered(member_id=existing["id"], created=False)
        member_id = int(inserted[0]["id"])
        await events.members_joined(
            [MemberJoined(member_id, store.id, joined_on, data.do_not_contact, advisor_id)]
        )
        if data.babies:
            await Baby.insert(
                *[
                    Baby(
                        member=member_id, name=b.name, birth_date=b.birth_date, due_date=b.due_date
                    )
                    for b in data.babies
                ]
            )
        return MemberRegistered(member_id=member_id, created=True)

    return await in_write_transaction(work)


async def member_for_till(phone_text: str) -> PosMemberOut:
    phone = phone_or_error(phone_text, "phone")
    rows = await fetch(
        "SELECT m.id, m.name, m.points_balance, s.code AS home_store, a.code AS owning_advisor,"
        " s.timezone FROM member m JOIN store s ON s.id = m.home_store"
        " LEFT JOIN advisor a ON a.id = m.owning_advisor WHERE m.phone = {}",
        phone,
    )
    if not rows:
        raise NotFound("no member with this phone")
    row = rows[0]
    babies = await babies_of(row["id"], clock.today(clock.zone(row["timezone"])))
    return PosMemberOut(
        member_id=row["id"],
        name=row["name"],
        points_balance=row["points_balance"],
        babies=babies,
        home_store=row["home_store"],
        owning_advisor=row["owning_advisor"],
    )


async def babies_of(member_id: int, today: date) -> list[BabyOut]:
    return (await babies_of_members([member_id], today)).get(member_id, [])


async def babies_of_members(member_ids: Sequence[int], today: date) -> dict[int, list[BabyOut]]:
    """Babies of many members at once, with their age in months and formula stage."""
    if not member_ids:
        return {}
    rows = await Baby.select().where(Baby.member.is_in(list(member_ids))).order_by(Baby.id)
    out: dict[int, list[BabyOut]] = defaultdict(list)
    for b in rows:
        out[b["member"]].append(baby_out(b["id"], b["name"], b["birth_date"], b["due_date"], today))
    return out


def baby_out(
    baby_id: int, name: str, birth_date: date | None, due_date: date | None, today: date
) -> BabyOut:
    """A baby as the phone and the till show it: age in whole months and the formula
    stage that age calls for (none before birth)."""
    months = age_in_months(birth_date, today) if birth_date else None
    return BabyOut(
        baby_id=baby_id,
        name=name,
        birth_date=birth_date,
        due_date=due_date,
        age_months=months,
        stage=stage_for_age(months) if months is not None and months >= 0 else None,
    )


# --- purchases ---------------------------------------------------------------


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
    product_ids: list[int] = field(default_factory=list)
    eligible_fen: int = 0
    formula_stage: int | None = None  # the highest formula stage on the receipt


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


async def _products(skus: set[str]) -> dict[str, tuple[int, bool, int | None]]:
    """id, points-eligible and formula stage (None for other categories) by SKU."""
    if not skus:
        return {}
    cond, args = in_list(sorted(skus), "text")
    rows = await fetch(
        f"SELECT id, sku, points_eligible, category, stage FROM product WHERE sku {cond}", *args
    )
    return {
        r["sku"]: (
            r["id"],
            bool(r["points_eligible"]),
            r["stage"] if r["category"] == "formula" else None,
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


async def ingest_purchases(
    store: StoreRef, raws: Sequence[Any], rule: PointsRule
) -> list[ReceiptResult]:
    """Record up to a batch of receipts for one store in one transaction.

    Each receipt is answered on its own: ``created``, ``duplicate`` (the same
    receipt again: the first answer is returned) or ``rejected`` with the reason.
    Every statement is set-based over the batch, whatever its size.
    """
    results: list[ReceiptResult | None] = [None] * len(raws)
    accepted: list[_Receipt] = []
    first_by_id: dict[str, _Receipt] = {}
    repeats: list[_Receipt] = []
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

    products = await _products({sku for r in accepted for sku, _, _ in r.lines})
    advisors = await _store_advisors(store, {r.advisor_code for r in accepted if r.advisor_code})
    valid: list[_Receipt] = []
    for r in accepted:
        unknown = [i for i, (sku, _, _) in enumerate(r.lines) if sku not in products]
        advisor = advisors.get(r.advisor_code) if r.advisor_code else None
        if unknown:
            errs = [FieldError(f"lines[{i}].sku", f"unknown SKU {r.lines[i][0]}") for i in unknown]
            results[r.position] = _rejected(r.receipt_id, InvalidInput(errs[0].message, errs))
        elif isinstance(advisor, str):
            results[r.position] = _rejected(r.receipt_id, InvalidInput.on("advisor_code", advisor))
        else:
            r.advisor_id = advisor
            r.product_ids = [products[sku][0] for sku, _, _ in r.lines]
            r.eligible_fen = sum(fen for sku, _, fen in r.lines if products[sku][1])
            if rule.points_for(r.eligible_fen) > MAX_RECEIPT_POINTS:
                results[r.position] = _rejected(
                    r.receipt_id,
                    InvalidInput.on("lines", "the receipt is too large for one purchase"),
                )
                continue
            stages = [stage for sku, _, _ in r.lines if (stage := products[sku][2]) is not None]
            r.formula_stage = max(stages) if stages else None
            valid.append(r)

    if valid:
        answers = await in_write_transaction(lambda: _record_purchases(store, valid, rule))
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


REUSED_RECEIPT = FieldError("receipt_id", "already used for a different receipt")


def _reused_receipt(receipt_id: str) -> Conflict:
    return Conflict(
        f"receipt_id {receipt_id} was already used for a different receipt", [REUSED_RECEIPT]
    )


async def _record_purchases(
    store: StoreRef, receipts: list[_Receipt], rule: PointsRule
) -> dict[str, ReceiptResult]:
    answers: dict[str, ReceiptResult] = {}
    if is_postgres():
        # Batch statements work on hundreds of rows at a time, so planning each afresh
        # costs little, while a generic plan cached when a table was small (a new
        # deployment) can stay a sequential scan for good.
        await fetch("SET LOCAL plan_cache_mode = force_custom_plan")

    # 1. Receipts this store already sent: the first answer, or a conflict.
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
    if not new:
        return answers

    # 2. Members: an unknown phone joins at this store, recruited by the receipt's
    #    advisor. Every phone is offered for insert first, in phone order, and only then
    #    are all of them locked, in id order: two batches sharing members then wait for
    #    each other in one order and cannot deadlock.
    first_receipt: dict[str, _Receipt] = {}
    for r in sorted(new, key=lambda r: r.purchased_at):
        first_receipt.setdefault(r.phone, r)
    source, args = rows_source(
        [
            ("phone", "text"),
            ("advisor", "int"),
            ("joined_at", "timestamptz"),
            ("joined_on", "date"),
        ],
        [
            (p, r.advisor_id, r.purchased_at, r.purchased_on)
            for p, r in sorted(first_receipt.items())
        ],
    )
    joined = await fetch(
        "INSERT INTO member (phone, name, home_store, owning_advisor, recruited_by,"
        " joined_at, joined_on, do_not_contact, points_balance, created_at)"
        f" SELECT phone, '', {param('int')}, advisor, advisor, joined_at, joined_on, false, 0,"
        f" {param('timestamptz')} FROM ({source}) AS src WHERE true ORDER BY phone"
        " ON CONFLICT (phone) DO NOTHING RETURNING id, phone",
        store.id,
        clock.now(),
        *args,
    )
    members = await _members_by_phone(set(first_receipt))

    # 3. Points, the latest purchase and the latest formula stage: one UPDATE over
    #    every member of the batch (the daily run reads the last two, never purchases).
    points = {r.receipt_id: rule.points_for(r.eligible_fen) for r in new}
    delta: dict[int, int] = defaultdict(int)
    latest: dict[int, _Receipt] = {}
    latest_formula: dict[int, _Receipt] = {}
    for r in new:
        mid = members[r.phone]["id"]
        delta[mid] += points[r.receipt_id]
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
    balances = {
        row["id"]: row["points_balance"]
        for row in await fetch(
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
    }
    # Walk each member's receipts backwards from the final balance to get the
    # balance right after each one: the answer a replay of that receipt gets.
    balance_after: dict[str, int] = {}
    running = dict(balances)
    for r in sorted(new, key=lambda r: (r.purchased_at, r.position), reverse=True):
        mid = members[r.phone]["id"]
        balance_after[r.receipt_id] = running[mid]
        running[mid] -= points[r.receipt_id]

    # 4. Claim the receipt ids. A concurrent writer that claimed one first means
    #    this whole event is replayed, and step 1 then answers it as a duplicate.
    stamp = clock.now()
    credited = {
        r.receipt_id: r.advisor_id
        if r.advisor_id is not None
        else members[r.phone]["owning_advisor"]
        for r in new
    }
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
                members[r.phone]["id"],
                credited[r.receipt_id],
                r.purchased_at,
                r.purchased_on,
                sum(fen for _, _, fen in r.lines),
                r.eligible_fen,
                points[r.receipt_id],
                balance_after[r.receipt_id],
                r.hash,
            )
            for r in sorted(new, key=lambda r: r.receipt_id)
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
        store.id,
        stamp,
        *args,
    )
    if len(claimed) != len(new):
        raise LostRace()
    purchase_ids = {row["receipt_id"]: row["id"] for row in claimed}
    for row in claimed:
        answers[row["receipt_id"]] = _answer(row, "created")

    # 5. Lines and the points ledger.
    source, args = rows_source(
        [
            ("purchase", "bigint"),
            ("line_no", "int"),
            ("product", "int"),
            ("quantity", "int"),
            ("amount_fen", "bigint"),
        ],
        [
            (purchase_ids[r.receipt_id], i + 1, r.product_ids[i], qty, fen)
            for r in new
            for i, (_, qty, fen) in enumerate(r.lines)
        ],
    )
    await fetch(
        "INSERT INTO purchase_line (purchase, line_no, product, quantity, amount_fen)"
        f" SELECT purchase, line_no, product, quantity, amount_fen FROM ({source}) AS src",
        *args,
    )
    earned = [r for r in new if points[r.receipt_id] > 0]
    if earned:
        source, args = rows_source(
            [
                ("member", "bigint"),
                ("points", "int"),
                ("purchase", "bigint"),
                ("occurred_at", "timestamptz"),
                ("occurred_on", "date"),
            ],
            [
                (
                    members[r.phone]["id"],
                    points[r.receipt_id],
                    purchase_ids[r.receipt_id],
                    r.purchased_at,
                    r.purchased_on,
                )
                for r in earned
            ],
        )
        await fetch(
            "INSERT INTO points_ledger (member, store, kind, points, purchase, redemption,"
            " occurred_at, occurred_on, created_at)"
            f" SELECT member, {param('int')}, 'earn', points, purchase, NULL, occurred_at,"
            f" occurred_on, {param('timestamptz')} FROM ({source}) AS src",
            store.id,
            stamp,
            *args,
        )
    await events.members_joined(
        [
            MemberJoined(
                row["id"],
                store.id,
                first_receipt[row["phone"]].purchased_on,
                False,
                first_receipt[row["phone"]].advisor_id,
            )
            for row in joined
        ]
    )
    await events.purchases_recorded(
        [
            PurchaseRecorded(
                purchase_id=purchase_ids[r.receipt_id],
                member_id=members[r.phone]["id"],
                store_id=store.id,
                advisor_id=credited[r.receipt_id],
                purchased_at=r.purchased_at,
                purchased_on=r.purchased_on,
                lines=tuple(
                    (pid, qty) for pid, (_, qty, _) in zip(r.product_ids, r.lines, strict=True)
                ),
                points_earned=points[r.receipt_id],
            )
            for r in new
        ]
    )
    return answers


async def _members_by_phone(phones: set[str]) -> dict[str, dict[str, Any]]:
    cond, args = in_list(sorted(phones), "text")
    # Lock the rows in one order (PostgreSQL) so that two batches touching the
    # same members queue instead of deadlocking on the balance update.
    lock = " ORDER BY id FOR UPDATE" if is_postgres() else ""
    rows = await fetch(
        f"SELECT id, phone, owning_advisor, points_balance FROM member WHERE phone {cond}{lock}",
        *args,
    )
    return {row["phone"]: row for row in rows}


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


# --- redemptions ------------------------------------------------------------


async def redeem_points(store: StoreRef, data: RedemptionIn) -> tuple[bool, RedemptionOut]:
    """Spend points at the till. Returns (created, answer). A balance never goes
    below zero: asking for more than the member has is a conflict and writes nothing."""
    phone = phone_or_error(data.member_phone, "member_phone")
    redeemed_at = event_instant(data.redeemed_at, store, "redeemed_at")
    digest = request_hash(data.redemption_id, phone, data.points, redeemed_at.isoformat())
    redeemed_on = clock.local_date(redeemed_at, store.tz)

    async def replayed() -> tuple[bool, RedemptionOut] | None:
        rows = await fetch(
            "SELECT points, points_balance_after, request_hash FROM redemption"
            " WHERE store = {} AND redemption_id = {}",
            store.id,
            data.redemption_id,
        )
        if not rows:
            return None
        if rows[0]["request_hash"] != digest:
            raise Conflict(
                f"redemption_id {data.redemption_id} was already used for a different redemption",
                [FieldError("redemption_id", "already used for a different redemption")],
            )
        return False, RedemptionOut(
            data.redemption_id, rows[0]["points"], rows[0]["points_balance_after"]
        )

    async def work() -> tuple[bool, RedemptionOut]:
        earlier = await replayed()
        if earlier is not None:
            return earlier
        member = await Member.select(Member.id).where(Member.phone == phone).first()
        if member is None:
            raise InvalidInput.on("member_phone", "no member with this phone")
        # Claim the id first, so that a concurrent replay waits on it and then answers
        # as a duplicate rather than as an overdraw.
        claimed = await fetch(
            "INSERT INTO redemption (store, redemption_id, member, points, redeemed_at,"
            " redeemed_on, points_balance_after, request_hash, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, 0, {}, {})"
            " ON CONFLICT (store, redemption_id) DO NOTHING RETURNING id",
            store.id,
            data.redemption_id,
            member["id"],
            data.points,
            redeemed_at,
            redeemed_on,
            digest,
            clock.now(),
        )
        if not claimed:
            raise LostRace()
        spent = await fetch(
            "UPDATE member SET points_balance = points_balance - {}"
            " WHERE id = {} AND points_balance >= {} RETURNING points_balance",
            data.points,
            member["id"],
            data.points,
        )
        if not spent:
            balance = (
                await Member.select(Member.points_balance).where(Member.id == member["id"]).first()
            )
            have = balance["points_balance"] if balance else 0
            raise Conflict(
                f"not enough points: the balance is {have}, the redemption asks for {data.points}",
                [FieldError("points", f"exceeds the balance of {have}")],
            )
        balance_after = int(spent[0]["points_balance"])
        redemption_pk = claimed[0]["id"]
        await fetch(
            "UPDATE redemption SET points_balance_after = {} WHERE id = {}",
            balance_after,
            redemption_pk,
        )
        await fetch(
            "INSERT INTO points_ledger (member, store, kind, points, purchase, redemption,"
            " occurred_at, occurred_on, created_at)"
            " VALUES ({}, {}, 'redeem', {}, NULL, {}, {}, {}, {})",
            member["id"],
            store.id,
            -data.points,
            redemption_pk,
            redeemed_at,
            redeemed_on,
            clock.now(),
        )
        return True, RedemptionOut(data.redemption_id, data.points, balance_after)

    return await in_write_transaction(work)
