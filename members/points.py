"""Points (冲积波): earned on eligible spend, spent at the till. A points ledger,
never a bare counter: a member's cached balance always equals the sum of their
ledger rows and never goes below zero."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from core import clock
from core.db import LostRace, fetch, in_write_transaction, param, rows_source
from core.errors import Conflict, FieldError, InvalidInput
from core.money import fen_of, request_hash, yuan_text
from members.lots import add_to_lots, booking_months, expire_member, take_oldest
from members.phones import phone_or_error
from members.policy import Policy, load_policy
from members.receipts import products_by_sku
from members.schemas import GoodsLineIn, RedemptionIn, RedemptionOut
from members.stores import StoreRef, event_instant
from members.tables import Member


@dataclass(frozen=True, slots=True)
class Earning:
    member_id: int
    store_id: int
    points: int  # with a promotion's extra
    bonus: int  # of which the extra
    promotion: int | None  # the promotion behind most of the extra
    purchase_id: int
    occurred_at: datetime
    occurred_on: date


async def book_earnings(earnings: list[Earning], policy: Policy) -> None:
    """The ledger rows of points earned on a batch's purchases (one statement, of one
    store or, imported, of several), and the month's lot of each member."""
    if not earnings:
        return
    months = await booking_months([e.occurred_on for e in earnings])
    source, args = rows_source(
        [
            ("member", "bigint"),
            ("store", "int"),
            ("points", "int"),
            ("bonus", "int"),
            ("promotion", "int"),
            ("purchase", "bigint"),
            ("occurred_at", "timestamptz"),
            ("occurred_on", "date"),
            ("booked_month", "text"),
        ],
        [
            (
                e.member_id,
                e.store_id,
                e.points,
                e.bonus,
                e.promotion,
                e.purchase_id,
                e.occurred_at,
                e.occurred_on,
                months[e.occurred_on],
            )
            for e in earnings
        ],
    )
    await fetch(
        "INSERT INTO points_ledger (member, store, kind, points, bonus_points, promotion,"
        " purchase, redemption, occurred_at, occurred_on, booked_month, created_at)"
        " SELECT member, store, 'earn', points, bonus, promotion, purchase, NULL,"
        f" occurred_at, occurred_on, booked_month, {param('timestamptz')} FROM ({source}) AS src",
        clock.now(),
        *args,
    )
    await add_to_lots([(e.member_id, e.points, e.occurred_on) for e in earnings], policy)


async def redeem_points(store: StoreRef, data: RedemptionIn) -> tuple[bool, RedemptionOut]:
    """Spend points at the till, the oldest lots first, at the value in force. Returns
    (created, answer). Asking for more than the member has is a conflict and writes
    nothing."""
    phone = phone_or_error(data.member_phone, "member_phone")
    redeemed_at = event_instant(data.redeemed_at, store, "redeemed_at")
    goods = await goods_lines(data.lines or [], "lines", amounts_required=False)
    digest = request_hash(
        data.redemption_id, phone, data.points, redeemed_at.isoformat(), goods or None
    )

    async def work() -> tuple[bool, RedemptionOut]:
        earlier = await _replayed(store, data.redemption_id, digest)
        if earlier is not None:
            return False, earlier
        member = await Member.select(Member.id).where(Member.phone == phone).first()
        if member is None:
            raise InvalidInput.on("member_phone", "no member with this phone")
        redemption_pk = await _claim(store, data, member["id"], redeemed_at, digest)
        today = clock.today(store.tz)
        await expire_member(member["id"], today)
        balance_after = await _spend(member["id"], data.points)
        if await take_oldest(member["id"], data.points, today) != data.points:
            raise RuntimeError(f"member {member['id']}: the lots are out of step with the balance")
        policy = await load_policy()
        value_fen = policy.value_fen(data.points)
        await _write_redemption(store, redemption_pk, member["id"], data.points, redeemed_at, goods)
        await fetch(
            "UPDATE redemption SET points_balance_after = {}, value_fen = {},"
            " value_per_100_fen = {} WHERE id = {}",
            balance_after,
            value_fen,
            policy.value_per_100_fen,
            redemption_pk,
        )
        return True, RedemptionOut(
            data.redemption_id, data.points, balance_after, yuan_text(value_fen)
        )

    return await in_write_transaction(work)


async def _write_redemption(
    store: StoreRef,
    redemption_pk: int,
    member_id: int,
    points: int,
    redeemed_at: datetime,
    goods: list[tuple[int, int, int | None]],
) -> None:
    """The ledger row and the goods taken."""
    day = clock.local_date(redeemed_at, store.tz)
    months = await booking_months([day])
    await fetch(
        "INSERT INTO points_ledger (member, store, kind, points, bonus_points, purchase,"
        " redemption, occurred_at, occurred_on, booked_month, created_at)"
        " VALUES ({}, {}, 'redeem', {}, 0, NULL, {}, {}, {}, {}, {})",
        member_id,
        store.id,
        -points,
        redemption_pk,
        redeemed_at,
        day,
        months[day],
        clock.now(),
    )
    if goods:
        source, args = rows_source(
            [("line_no", "int"), ("product", "int"), ("quantity", "int"), ("amount_fen", "bigint")],
            [(i + 1, *line) for i, line in enumerate(goods)],
        )
        await fetch(
            "INSERT INTO redemption_line (redemption, line_no, product, quantity, amount_fen)"
            f" SELECT {param('bigint')}, line_no, product, quantity, amount_fen FROM ({source})"
            " AS src",
            redemption_pk,
            *args,
        )


async def goods_lines(
    lines: Sequence[GoodsLineIn], field_name: str, amounts_required: bool
) -> list[tuple[int, int, int | None]]:
    """(product id, quantity, amount in fen) of goods lines, or a field error naming
    the line: an unknown SKU, or a missing amount where one is required."""
    products = await products_by_sku({line.sku for line in lines})
    found = []
    for i, line in enumerate(lines):
        product = products.get(line.sku)
        if product is None:
            raise InvalidInput.on(f"{field_name}[{i}].sku", f"unknown SKU {line.sku}")
        if line.amount is None and amounts_required:
            raise InvalidInput.on(f"{field_name}[{i}].amount", "is required")
        amount = None if line.amount is None else fen_of(line.amount, f"{field_name}[{i}].amount")
        found.append((product.id, line.quantity, amount))
    return found


async def _replayed(store: StoreRef, redemption_id: str, digest: str) -> RedemptionOut | None:
    rows = await fetch(
        "SELECT points, points_balance_after, value_fen, request_hash FROM redemption"
        " WHERE store = {} AND redemption_id = {}",
        store.id,
        redemption_id,
    )
    if not rows:
        return None
    if rows[0]["request_hash"] != digest:
        raise Conflict(
            f"redemption_id {redemption_id} was already used for a different redemption",
            [FieldError("redemption_id", "already used for a different redemption")],
        )
    return RedemptionOut(
        redemption_id,
        rows[0]["points"],
        rows[0]["points_balance_after"],
        yuan_text(int(rows[0]["value_fen"])),
    )


async def _claim(
    store: StoreRef, data: RedemptionIn, member_id: int, redeemed_at: datetime, digest: str
) -> int:
    """Claim the id first, so that a concurrent replay waits on it and then answers as
    a duplicate rather than as an overdraw."""
    claimed = await fetch(
        "INSERT INTO redemption (store, redemption_id, member, points, redeemed_at,"
        " redeemed_on, points_balance_after, request_hash, created_at)"
        " VALUES ({}, {}, {}, {}, {}, {}, 0, {}, {})"
        " ON CONFLICT (store, redemption_id) DO NOTHING RETURNING id",
        store.id,
        data.redemption_id,
        member_id,
        data.points,
        redeemed_at,
        clock.local_date(redeemed_at, store.tz),
        digest,
        clock.now(),
    )
    if not claimed:
        raise LostRace()
    return int(claimed[0]["id"])


async def _spend(member_id: int, points: int) -> int:
    """Take points off the balance in one conditional UPDATE; never below zero."""
    spent = await fetch(
        "UPDATE member SET points_balance = points_balance - {}"
        " WHERE id = {} AND points_balance >= {} RETURNING points_balance",
        points,
        member_id,
        points,
    )
    if not spent:
        balance = await Member.select(Member.points_balance).where(Member.id == member_id).first()
        have = balance["points_balance"] if balance else 0
        raise Conflict(
            f"not enough points: the balance is {have}, the redemption asks for {points}",
            [FieldError("points", f"exceeds the balance of {have}")],
        )
    return int(spent[0]["points_balance"])
