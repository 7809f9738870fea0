"""Points (冲积波): earned on eligible spend, spent at the till. A points ledger,
never a bare counter: a member's cached balance always equals the sum of their
ledger rows and never goes below zero."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal

from core import clock
from core.db import LostRace, fetch, in_write_transaction, param, rows_source
from core.errors import Conflict, FieldError, InvalidInput
from core.money import request_hash
from members.phones import phone_or_error
from members.schemas import RedemptionIn, RedemptionOut
from members.stores import StoreRef, event_instant
from members.tables import Member


@dataclass(frozen=True, slots=True)
class PointsRule:
    """Points earned per whole yuan of points-eligible spend."""

    points_per_yuan: Decimal = Decimal(1)

    def points_for(self, eligible_fen: int) -> int:
        yuan = Decimal(eligible_fen) / 100
        return int((yuan * self.points_per_yuan).to_integral_value(rounding=ROUND_FLOOR))


# member, points, purchase, occurred_at, occurred_on
Earning = tuple[int, int, int, datetime, date]


async def book_earnings(store_id: int, earnings: list[Earning]) -> None:
    """The ledger rows of points earned on a batch's purchases: one statement."""
    if not earnings:
        return
    source, args = rows_source(
        [
            ("member", "bigint"),
            ("points", "int"),
            ("purchase", "bigint"),
            ("occurred_at", "timestamptz"),
            ("occurred_on", "date"),
        ],
        earnings,
    )
    await fetch(
        "INSERT INTO points_ledger (member, store, kind, points, purchase, redemption,"
        " occurred_at, occurred_on, created_at)"
        f" SELECT member, {param('int')}, 'earn', points, purchase, NULL, occurred_at,"
        f" occurred_on, {param('timestamptz')} FROM ({source}) AS src",
        store_id,
        clock.now(),
        *args,
    )


async def redeem_points(store: StoreRef, data: RedemptionIn) -> tuple[bool, RedemptionOut]:
    """Spend points at the till. Returns (created, answer). Asking for more than the
    member has is a conflict and writes nothing."""
    phone = phone_or_error(data.member_phone, "member_phone")
    redeemed_at = event_instant(data.redeemed_at, store, "redeemed_at")
    digest = request_hash(data.redemption_id, phone, data.points, redeemed_at.isoformat())

    async def work() -> tuple[bool, RedemptionOut]:
        earlier = await _replayed(store, data.redemption_id, digest)
        if earlier is not None:
            return False, earlier
        member = await Member.select(Member.id).where(Member.phone == phone).first()
        if member is None:
            raise InvalidInput.on("member_phone", "no member with this phone")
        redemption_pk = await _claim(store, data, member["id"], redeemed_at, digest)
        balance_after = await _spend(member["id"], data.points)
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
            clock.local_date(redeemed_at, store.tz),
            clock.now(),
        )
        return True, RedemptionOut(data.redemption_id, data.points, balance_after)

    return await in_write_transaction(work)


async def _replayed(store: StoreRef, redemption_id: str, digest: str) -> RedemptionOut | None:
    rows = await fetch(
        "SELECT points, points_balance_after, request_hash FROM redemption"
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
    return RedemptionOut(redemption_id, rows[0]["points"], rows[0]["points_balance_after"])


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
