"""The store's side of an order: an advisor accepts it (one of two at once wins),
declines it (it moves on at once), or marks it delivered with the till's receipt id,
and then it is the store's purchase: points, follow-ups, score, conversion, and the
recruit credit of a member who joined for it, all in the order's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core import clock
from core.db import fetch, in_write_transaction
from core.errors import Conflict, FieldError, InvalidInput, NotFound
from core.events import bus
from core.money import yuan_text
from members.o2o import advisor_code, credit_delivery
from members.policy import PointsRule
from members.receipts import REUSED_RECEIPT
from members.stores import StoreRef, event_instant
from members.tills import record_in_transaction
from orders.events import OrderAccepted, OrderDelivered
from orders.schemas import DeliveredIn, StoreActionOut
from orders.services import Limits, lock_order, move_on, record_event

MINE = "store = {} AND order_id = {}"


def _not_found(order_id: str) -> NotFound:
    return NotFound(f"no order {order_id} at your store")


async def accept(store: StoreRef, advisor_id: int, order_id: str) -> StoreActionOut:
    """The first advisor to accept holds the order; another accepting after (or at
    the same moment) gets 409. The same advisor again gets the same answer."""

    async def work() -> StoreActionOut:
        now = clock.now()
        # One conditional UPDATE: of two concurrent accepts, the second waits on the
        # row (PostgreSQL) or on the write lock (SQLite), then finds it accepted.
        won = await fetch(
            "UPDATE o2o_order SET status = 'accepted', accepted_by = {}, accepted_at = {}"
            " WHERE id = (SELECT id FROM o2o_order WHERE store = {} AND order_id = {}"
            " ORDER BY id DESC LIMIT 1) AND status = 'routed' RETURNING id",
            advisor_id,
            now,
            store.id,
            order_id,
        )
        if won:
            order_pk = int(won[0]["id"])
            await record_event(order_pk, "accepted", now, store.id, advisor_id)
            await bus.publish([OrderAccepted(order_pk, store.id, advisor_id)])
        else:
            order = await lock_order(MINE, store.id, order_id)
            if order is None:
                raise _not_found(order_id)
            if order["status"] != "accepted" or order["accepted_by"] != advisor_id:
                raise Conflict(f"order {order_id} is {order['status']}: accepted already")
        return StoreActionOut(order_id, "accepted", accepted_by=await advisor_code(advisor_id))

    return await in_write_transaction(work)


async def decline(
    store: StoreRef, advisor_id: int, order_id: str, limits: Limits
) -> StoreActionOut:
    """The store cannot deliver it (before or after accepting): it moves on at once."""

    async def work() -> StoreActionOut:
        order = await lock_order(MINE, store.id, order_id)
        if order is None:
            raise _not_found(order_id)
        if order["status"] not in ("routed", "accepted"):
            raise Conflict(f"order {order_id} is {order['status']}: too late to decline")
        await move_on(order, "declined", limits, advisor_id)
        return StoreActionOut(order_id, "declined")

    return await in_write_transaction(work)


async def delivered(
    store: StoreRef, advisor_id: int, order_id: str, data: DeliveredIn, rule: PointsRule
) -> tuple[bool, StoreActionOut]:
    """Delivered: the order becomes the store's purchase under the till's receipt id,
    credited to the advisor who delivered. Returns (first time, answer); the same
    receipt again gets the first answer, another receipt a 409."""
    at = event_instant(data.delivered_at or clock.now(), store, "delivered_at")
    code = await advisor_code(advisor_id)

    async def work() -> tuple[bool, StoreActionOut]:
        order = await lock_order(MINE, store.id, order_id)
        if order is None:
            raise _not_found(order_id)
        if order["status"] == "delivered":
            return False, await _delivered_again(store, order, data, rule)
        if order["status"] not in ("routed", "accepted"):
            raise Conflict(f"order {order_id} is {order['status']}")
        if at < _instant(order["placed_at"]):
            raise InvalidInput.on("delivered_at", "is before the order was placed")
        if order["joined"]:
            # Before the purchase, so the welcome task and the purchase's follow-ups
            # go to the advisor who now looks after the member.
            await credit_delivery(
                int(order["member"]), store, advisor_id, clock.local_date(at, store.tz)
            )
        result = await record_in_transaction(
            store, await _receipt(order, data.receipt_id, at, code), rule
        )
        _refused(result)
        assert result.purchase_id is not None
        await _mark_delivered(order, advisor_id, at, data.receipt_id, result.purchase_id)
        await bus.publish([OrderDelivered(int(order["id"]), store.id, advisor_id, at)])
        return True, _answer(order_id, advisor_id, code, result)

    return await in_write_transaction(work)


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def _receipt(
    order: dict[str, Any], receipt_id: str, at: datetime, code: str
) -> dict[str, Any]:
    lines = await fetch(
        "SELECT sku, quantity, amount_fen FROM o2o_order_line WHERE o2o_order = {}"
        " ORDER BY line_no",
        order["id"],
    )
    return {
        "receipt_id": receipt_id,
        "member_phone": order["phone"],
        "purchased_at": at.isoformat(),
        "advisor_code": code,
        "lines": [
            {"sku": r["sku"], "quantity": r["quantity"], "amount": yuan_text(r["amount_fen"])}
            for r in lines
        ],
    }


def _refused(result: Any) -> None:
    if result.status != "rejected":
        return
    errors = [
        FieldError("receipt_id", e.message) if e == REUSED_RECEIPT else e
        for e in (result.errors or [])
    ]
    if errors and errors[0].field == "receipt_id":
        raise Conflict(f"receipt_id: {errors[0].message}", errors)
    raise InvalidInput(result.error or "the order cannot be recorded as a purchase", errors)


async def _mark_delivered(
    order: dict[str, Any], advisor_id: int, at: datetime, receipt_id: str, purchase_id: int
) -> None:
    now = clock.now()
    if order["status"] == "routed":  # delivered without an accept first: it was accepted
        await record_event(int(order["id"]), "accepted", now, order["store"], advisor_id)
    await record_event(int(order["id"]), "delivered", at, order["store"], advisor_id)
    await fetch(
        "UPDATE o2o_order SET status = 'delivered', delivered_at = {}, receipt_id = {},"
        " purchase = {}, accepted_by = COALESCE(accepted_by, {}),"
        " accepted_at = COALESCE(accepted_at, {}) WHERE id = {}",
        at,
        receipt_id,
        purchase_id,
        advisor_id,
        now,
        order["id"],
    )


async def _delivered_again(
    store: StoreRef, order: dict[str, Any], data: DeliveredIn, rule: PointsRule
) -> StoreActionOut:
    """The same delivery sent again: the purchase's first answer (a replay of the same
    receipt); another receipt id is a conflict."""
    if data.receipt_id != order["receipt_id"]:
        raise Conflict(
            f"order {order['order_id']} was delivered under receipt {order['receipt_id']}",
            [FieldError("receipt_id", "the order was delivered under another receipt")],
        )
    rows = await fetch(
        "SELECT advisor, at FROM o2o_order_event WHERE o2o_order = {} AND event = 'delivered'",
        order["id"],
    )
    advisor_id, at = int(rows[0]["advisor"]), _instant(rows[0]["at"])
    code = await advisor_code(advisor_id)
    result = await record_in_transaction(
        store, await _receipt(order, data.receipt_id, at, code), rule
    )
    _refused(result)
    return _answer(order["order_id"], advisor_id, code, result)


def _answer(order_id: str, advisor_id: int, code: str, result: Any) -> StoreActionOut:
    return StoreActionOut(
        order_id,
        "delivered",
        accepted_by=code,
        purchase_id=result.purchase_id,
        points_earned=result.points_earned,
        points_balance=result.points_balance,
    )
