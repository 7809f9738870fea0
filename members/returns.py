"""Returns (退货): goods of a receipt brought back, whole or in part. A return is a new
fact beside the purchase, never an edit of it: the receipt's points for what came back
(its promotion's extra included) are taken back from the balance, the oldest lots
first and never below zero (what was spent already is the ``shortfall``); the score
ledger reverses the advisor's points, and a whole return cancels the receipt's open
follow-ups and the conversion it made (listeners of ``PurchaseReturned``).
Idempotent by ``return_id`` per store."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from core import clock
from core.db import LostRace, fetch, in_write_transaction, is_postgres, param, rows_source
from core.errors import Conflict, FieldError, InvalidInput
from core.events import bus
from core.money import request_hash
from members.events import PurchaseReturned
from members.lots import booking_months, expire_member, take_oldest
from members.points import goods_lines
from members.policy import load_policy
from members.schemas import ReturnIn, ReturnOut
from members.stores import StoreRef, event_instant
from members.tiers import refresh_tiers


@dataclass(slots=True)
class _Line:
    """A product of the receipt: what was bought, and what came back before."""

    product: int
    quantity: int
    amount_fen: int
    bonus: int  # the promotion extra it earned
    eligible: bool
    gone: int = 0  # quantity brought back by earlier returns
    gone_fen: int = 0

    @property
    def left(self) -> int:
        return self.quantity - self.gone

    @property
    def left_fen(self) -> int:
        return self.amount_fen - self.gone_fen


@dataclass(frozen=True, slots=True)
class _Return:
    store: StoreRef
    data: ReturnIn
    returned_at: datetime
    returned_on: date
    goods: list[tuple[int, int, int | None]]  # product, quantity, amount in fen
    digest: str


async def record_return(store: StoreRef, data: ReturnIn) -> tuple[bool, ReturnOut]:
    """Returns (created, answer); the same return again gets the first answer."""
    returned_at = event_instant(data.returned_at, store, "returned_at")
    goods = await goods_lines(data.lines or [], "lines", amounts_required=True)
    ask = _Return(
        store,
        data,
        returned_at,
        clock.local_date(returned_at, store.tz),
        goods,
        request_hash(data.return_id, data.receipt_id, returned_at.isoformat(), goods or None),
    )
    return await in_write_transaction(lambda: _record(ask))


async def _record(ask: _Return) -> tuple[bool, ReturnOut]:
    earlier = await _replayed(ask)
    if earlier is not None:
        return False, earlier
    purchase = await _lock_purchase(ask)
    lines = await _lines_of(purchase)
    back = _taken_back(ask, lines)
    whole = all(line.left == back.get(p, (0, 0))[0] for p, line in lines.items())
    owed = _points_owed(purchase, lines, back)
    return_pk = await _claim(ask, purchase, back, whole, owed)
    member_id = int(purchase["member"])
    await expire_member(member_id, clock.today(ask.store.tz))
    reversed_points = await take_oldest(member_id, owed, clock.today(ask.store.tz))
    balance = await _take_from_balance(member_id, reversed_points)
    await _write(ask, return_pk, member_id, reversed_points, owed, balance)
    await bus.publish(
        [
            PurchaseReturned(
                return_pk=return_pk,
                purchase_id=int(purchase["id"]),
                member_id=member_id,
                store_id=int(purchase["store"]),
                advisor_id=purchase["advisor"],
                purchased_on=clock.as_date(purchase["purchased_on"]),
                returned_on=ask.returned_on,
                points_owed=owed,
                whole=whole,
            )
        ]
    )
    policy = await load_policy()
    await bus.publish(await refresh_tiers([member_id], clock.today(ask.store.tz), policy))
    return True, ReturnOut(ask.data.return_id, reversed_points, balance, owed - reversed_points)


async def _replayed(ask: _Return) -> ReturnOut | None:
    rows = await fetch(
        "SELECT points_reversed, points_balance_after, shortfall, request_hash"
        " FROM purchase_return WHERE store = {} AND return_id = {}",
        ask.store.id,
        ask.data.return_id,
    )
    if not rows:
        return None
    if rows[0]["request_hash"] != ask.digest:
        raise Conflict(
            f"return_id {ask.data.return_id} was already used for a different return",
            [FieldError("return_id", "already used for a different return")],
        )
    row = rows[0]
    return ReturnOut(
        ask.data.return_id,
        int(row["points_reversed"]),
        int(row["points_balance_after"]),
        int(row["shortfall"]),
    )


async def _lock_purchase(ask: _Return) -> dict[str, Any]:
    """The receipt, locked: two returns of one receipt take turns, so neither can
    bring back what the other already did."""
    lock = " FOR UPDATE" if is_postgres() else ""
    rows = await fetch(
        "SELECT id, store, member, advisor, purchased_at, purchased_on, eligible_fen,"
        " points_earned, bonus_points FROM purchase"
        f" WHERE store = {{}} AND receipt_id = {{}}{lock}",
        ask.store.id,
        ask.data.receipt_id,
    )
    if not rows:
        raise InvalidInput.on("receipt_id", f"no receipt {ask.data.receipt_id} at this store")
    if ask.returned_at < rows[0]["purchased_at"]:
        raise InvalidInput.on("returned_at", "is before the purchase")
    return rows[0]


async def _lines_of(purchase: dict[str, Any]) -> dict[int, _Line]:
    """Per product: what the receipt had, and what earlier returns brought back."""
    lines: dict[int, _Line] = {}
    for row in await fetch(
        "SELECT l.product, SUM(l.quantity) AS quantity, SUM(l.amount_fen) AS amount,"
        " SUM(l.bonus_points) AS bonus, MAX(CASE WHEN p.points_eligible THEN 1 ELSE 0 END)"
        " AS eligible FROM purchase_line l JOIN product p ON p.id = l.product"
        " WHERE l.purchase = {} GROUP BY l.product",
        purchase["id"],
    ):
        lines[int(row["product"])] = _Line(
            int(row["product"]),
            int(row["quantity"]),
            int(row["amount"]),
            int(row["bonus"] or 0),
            bool(row["eligible"]),
        )
    for row in await fetch(
        "SELECT rl.product, SUM(rl.quantity) AS quantity, SUM(rl.amount_fen) AS amount"
        " FROM return_line rl JOIN purchase_return r ON r.id = rl.purchase_return"
        " WHERE r.purchase = {} GROUP BY rl.product",
        purchase["id"],
    ):
        line = lines[int(row["product"])]
        line.gone, line.gone_fen = int(row["quantity"]), int(row["amount"])
    return lines


def _taken_back(ask: _Return, lines: dict[int, _Line]) -> dict[int, tuple[int, int]]:
    """Per product, (quantity, amount in fen) this return brings back; more than is
    left of the receipt is refused, naming the line."""
    if not ask.goods:
        return {p: (line.left, line.left_fen) for p, line in lines.items() if line.left}
    wanted: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for i, (product, quantity, amount) in enumerate(ask.goods):
        line = lines.get(product)
        if line is None:
            raise InvalidInput.on(f"lines[{i}].sku", "is not on the receipt")
        wanted[product][0] += quantity
        wanted[product][1] += amount or 0
        if wanted[product][0] > line.left:
            raise InvalidInput.on(
                f"lines[{i}].quantity", f"more than the {line.left} left on the receipt"
            )
        if wanted[product][1] > line.left_fen:
            raise InvalidInput.on(f"lines[{i}].amount", "more than was paid for what is left")
    return {p: (q, a) for p, (q, a) in wanted.items()}


def _share(whole: int, part: int, of: int) -> int:
    return whole * part // of if of else 0


def _points_owed(
    purchase: dict[str, Any], lines: dict[int, _Line], back: dict[int, tuple[int, int]]
) -> int:
    """The receipt's points this return undoes: the base points in proportion to the
    eligible amount brought back, and each line's extra in proportion to its quantity,
    each counted on everything returned so far less what earlier returns undid, so
    that the last return undoes exactly what is left."""
    base = int(purchase["points_earned"]) - int(purchase["bonus_points"])
    eligible = int(purchase["eligible_fen"])
    before = sum(line.gone_fen for line in lines.values() if line.eligible)
    now = sum(a for p, (_, a) in back.items() if lines[p].eligible)
    owed = _share(base, before + now, eligible) - _share(base, before, eligible)
    for product, (quantity, _) in back.items():
        line = lines[product]
        owed += _share(line.bonus, line.gone + quantity, line.quantity) - _share(
            line.bonus, line.gone, line.quantity
        )
    return owed


async def _claim(
    ask: _Return,
    purchase: dict[str, Any],
    back: dict[int, tuple[int, int]],
    whole: bool,
    owed: int,
) -> int:
    """Claim the return id with what comes back. A concurrent writer that claimed it
    first makes this a replay: the retry answers it."""
    claimed = await fetch(
        "INSERT INTO purchase_return (store, return_id, purchase, member, returned_at,"
        " returned_on, amount_fen, whole, points_reversed, points_owed, shortfall,"
        " points_balance_after, request_hash, created_at) VALUES ({}, {}, {}, {}, {}, {},"
        " {}, {}, 0, {}, 0, 0, {}, {}) ON CONFLICT (store, return_id) DO NOTHING RETURNING id",
        ask.store.id,
        ask.data.return_id,
        purchase["id"],
        purchase["member"],
        ask.returned_at,
        ask.returned_on,
        sum(amount for _, amount in back.values()),
        whole,
        owed,
        ask.digest,
        clock.now(),
    )
    if not claimed:
        raise LostRace()
    return_pk = int(claimed[0]["id"])
    source, args = rows_source(
        [("product", "int"), ("quantity", "int"), ("amount_fen", "bigint")],
        [(p, q, a) for p, (q, a) in sorted(back.items())],
    )
    await fetch(
        "INSERT INTO return_line (purchase_return, product, quantity, amount_fen)"
        f" SELECT {param('bigint')}, product, quantity, amount_fen FROM ({source}) AS src",
        return_pk,
        *args,
    )
    return return_pk


async def _take_from_balance(member_id: int, points: int) -> int:
    rows = await fetch(
        "UPDATE member SET points_balance = points_balance - {} WHERE id = {}"
        " RETURNING points_balance",
        points,
        member_id,
    )
    return int(rows[0]["points_balance"])


async def _write(
    ask: _Return, return_pk: int, member_id: int, reversed_points: int, owed: int, balance: int
) -> None:
    await fetch(
        "UPDATE purchase_return SET points_reversed = {}, shortfall = {},"
        " points_balance_after = {} WHERE id = {}",
        reversed_points,
        owed - reversed_points,
        balance,
        return_pk,
    )
    if reversed_points == 0:
        return
    months = await booking_months([ask.returned_on])
    await fetch(
        "INSERT INTO points_ledger (member, store, kind, points, bonus_points, purchase_return,"
        " occurred_at, occurred_on, booked_month, created_at)"
        " VALUES ({}, {}, 'reverse', {}, 0, {}, {}, {}, {}, {})",
        member_id,
        ask.store.id,
        -reversed_points,
        return_pk,
        ask.returned_at,
        ask.returned_on,
        months[ask.returned_on],
        clock.now(),
    )
