"""An order placed by a sales channel, routed in its own transaction, and moved on
when its store declines it or lets its time limit pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from core import clock
from core.db import LostRace, fetch, in_write_transaction, is_postgres, rows_source
from core.errors import Conflict, FieldError, InvalidInput
from core.events import bus
from core.money import fen_of, request_hash
from members.o2o import (
    join_for_order,
    member_of_phone,
    move_order_member,
    product_skus,
    store_refs,
)
from members.phones import phone_or_error
from members.stores import FUTURE_TOLERANCE
from orders.events import OrderMovedAway, OrderRouted
from orders.routing import Spot, great_circle_km, nearest_store
from orders.schemas import OrderIn, OrderPlaced

log = logging.getLogger("tiantian.orders")

# Columns of an order the routing and the store's side read, locked.
ORDER_COLUMNS = (
    "id, order_id, channel, member, joined, phone, name, address, latitude, longitude,"
    " status, route, store, routed_at, accepted_by, placed_at, receipt_id, purchase,"
    " total_fen, region"
)


@dataclass(frozen=True, slots=True)
class Limits:
    radius_km: float = 10.0  # TIANTIAN_O2O_RADIUS_KM
    accept_minutes: int = 30  # TIANTIAN_O2O_ACCEPT_MINUTES


@dataclass(slots=True)
class _Order:
    order_id: str
    phone: str
    name: str
    address: str
    latitude: float
    longitude: float
    placed_at: datetime
    lines: list[tuple[str, int, int]]
    hash: str = ""

    @property
    def total_fen(self) -> int:
        return sum(fen for _, _, fen in self.lines)


async def _checked(data: OrderIn) -> _Order:
    """The order's fields checked on their own; raises InvalidInput naming the field."""
    phone = phone_or_error(data.member_phone, "member_phone")
    address = data.address
    if address.latitude == 0 and address.longitude == 0:
        raise InvalidInput.on("address.latitude", "0, 0 is not an address (no position sent?)")
    if not address.text.strip():
        raise InvalidInput.on("address.text", "is required")
    placed_at = data.placed_at
    if placed_at.tzinfo is None:
        raise InvalidInput.on("placed_at", "needs its offset (2026-11-23T10:15:00+08:00)")
    if placed_at > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput.on("placed_at", "is in the future")
    lines = [
        (line.sku, line.quantity, fen_of(line.amount, f"lines[{i}].amount"))
        for i, line in enumerate(data.lines)
    ]
    known = await product_skus([sku for sku, _, _ in lines])
    unknown = [
        FieldError(f"lines[{i}].sku", f"unknown SKU {sku}")
        for i, (sku, _, _) in enumerate(lines)
        if sku not in known
    ]
    if unknown:
        raise InvalidInput(unknown[0].message, unknown)
    order = _Order(
        data.order_id,
        phone,
        data.name.strip(),
        address.text.strip(),
        address.latitude,
        address.longitude,
        placed_at,
        lines,
    )
    order.hash = request_hash(
        order.order_id,
        phone,
        order.name,
        order.address,
        order.latitude,
        order.longitude,
        placed_at.isoformat(),
        lines,
    )
    return order


async def place_order(channel_id: int, data: OrderIn, limits: Limits) -> tuple[bool, OrderPlaced]:
    """A channel's order. Returns (created, answer); the same order again gets the
    first answer, the same id with another body a 409."""
    order = await _checked(data)
    return await in_write_transaction(lambda: _place(channel_id, order, limits))


async def _place(channel_id: int, order: _Order, limits: Limits) -> tuple[bool, OrderPlaced]:
    existing = await fetch(
        "SELECT request_hash, first_route, first_distance_km, first_store"
        " FROM o2o_order WHERE channel = {} AND order_id = {}",
        channel_id,
        order.order_id,
    )
    if existing:
        return False, await _replay(existing[0], order)
    now = clock.now()
    joined = False
    spot, route, member_id = await _route(order.phone, order.latitude, order.longitude, limits)
    if spot is not None and member_id is None:
        member_id, joined = await join_for_order(order.phone, order.name, spot.store, now), True
    status = "routed" if spot else "unrouted"
    rows = await fetch(
        "INSERT INTO o2o_order (channel, order_id, member, joined, phone, name, address,"
        " latitude, longitude, placed_at, status, route, first_route, first_store,"
        " first_distance_km, region, store, distance_km, routed_at, total_fen, request_hash,"
        " created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},"
        " {}, {}, {}, {}, {}, {}) ON CONFLICT (channel, order_id) DO NOTHING RETURNING id",
        channel_id,
        order.order_id,
        member_id,
        joined,
        order.phone,
        order.name,
        order.address,
        order.latitude,
        order.longitude,
        order.placed_at,
        status,
        route,
        route,
        spot.store.id if spot else None,
        spot.distance_km if spot else None,
        spot.region if spot else None,
        spot.store.id if spot else None,
        spot.distance_km if spot else None,
        now,
        order.total_fen,
        order.hash,
        now,
    )
    if not rows:
        raise LostRace()  # the same order from a concurrent retry: answered as a replay
    order_pk = int(rows[0]["id"])
    await _write_lines(order_pk, order.lines)
    if spot is not None:
        assert member_id is not None
        await routed_to(order_pk, order.order_id, spot, member_id, route, order.address, now)
    answer = OrderPlaced(
        order.order_id,
        status,  # type: ignore[arg-type]
        spot.store.code if spot else None,
        route,  # type: ignore[arg-type]
        spot.distance_km if spot else None,
    )
    return True, answer


async def _replay(row: dict[str, Any], order: _Order) -> OrderPlaced:
    if row["request_hash"] != order.hash:
        raise Conflict(
            f"order_id {order.order_id} was already used for a different order",
            [FieldError("order_id", "already used for a different order")],
        )
    code = None
    if row["first_store"] is not None:
        code = (await store_refs([int(row["first_store"])]))[int(row["first_store"])][0].code
    return OrderPlaced(
        order.order_id,
        "routed" if code else "unrouted",
        code,
        row["first_route"],
        row["first_distance_km"],
    )


async def _route(
    phone: str, lat: float, lon: float, limits: Limits, order_pk: int | None = None
) -> tuple[Spot | None, str, int | None]:
    """(where, route, the member if known). A known
    member's home store first if it takes orders and has not had this order; else the
    nearest store in reach that has not."""
    member = await member_of_phone(phone)
    if member is not None and member.home is not None:
        tried = order_pk is not None and await _was_routed_to(order_pk, member.home.id)
        if not tried:
            km = round(great_circle_km(lat, lon, *member.home_position), 3)
            return Spot(member.home, member.home_region or "", km), "home_store", member.id
    nearest = await nearest_store(lat, lon, limits.radius_km, order_pk)
    member_id = member.id if member else None
    return nearest, "nearest" if nearest else "unrouted", member_id


async def _was_routed_to(order_pk: int, store_id: int) -> bool:
    rows = await fetch(
        "SELECT 1 AS yes FROM o2o_order_event WHERE o2o_order = {} AND store = {}"
        " AND event = 'routed'",
        order_pk,
        store_id,
    )
    return bool(rows)


async def _write_lines(order_pk: int, lines: list[tuple[str, int, int]]) -> None:
    source, args = rows_source(
        [("line_no", "int"), ("sku", "text"), ("quantity", "int"), ("amount_fen", "bigint")],
        [(i + 1, sku, qty, fen) for i, (sku, qty, fen) in enumerate(lines)],
    )
    await fetch(
        "INSERT INTO o2o_order_line (o2o_order, line_no, sku, quantity, amount_fen)"
        f" SELECT {{}}, line_no, sku, quantity, amount_fen FROM ({source}) AS src",
        order_pk,
        *args,
    )


async def record_event(
    order_pk: int,
    event: str,
    at: datetime,
    store_id: int | None,
    advisor_id: int | None = None,
    distance_km: float | None = None,
) -> None:
    await fetch(
        "INSERT INTO o2o_order_event (o2o_order, at, event, store, advisor, distance_km)"
        " VALUES ({}, {}, {}, {}, {}, {})",
        order_pk,
        at,
        event,
        store_id,
        advisor_id,
        distance_km,
    )


async def routed_to(
    order_pk: int,
    order_id: str,
    spot: Spot,
    member_id: int,
    route: str,
    address: str,
    at: datetime,
) -> None:
    """The order's history and the store's delivery task (by the event)."""
    await record_event(order_pk, "routed", at, spot.store.id, distance_km=spot.distance_km)
    await bus.publish(
        [
            OrderRouted(
                order_pk=order_pk,
                order_id=order_id,
                store_id=spot.store.id,
                member_id=member_id,
                home_store=route == "home_store",
                reason=f"线上订单 {order_id} 送货上门:{address}"[:200],
                at=at,
                day=clock.local_date(at, spot.store.tz),
            )
        ]
    )


async def lock_order(condition: str, *args: Any) -> dict[str, Any] | None:
    """The order matching ``condition``, locked for the rest of the transaction."""
    lock = " FOR UPDATE" if is_postgres() else ""
    rows = await fetch(
        f"SELECT {ORDER_COLUMNS} FROM o2o_order WHERE {condition} ORDER BY id DESC LIMIT 1{lock}",
        *args,
    )
    return rows[0] if rows else None


async def move_on(order: dict[str, Any], event: str, limits: Limits, advisor_id: int | None) -> str:
    """The store holding ``order`` lost it (``declined``, ``timed_out``): it goes to
    the next store not yet tried, or to HQ's unrouted queue. Returns its new status."""
    now = clock.now()
    order_pk, from_store = int(order["id"]), order["store"]
    if from_store is not None:
        await record_event(order_pk, event, now, from_store, advisor_id)
        await bus.publish([OrderMovedAway(order_pk, int(from_store))])
    return await offer(order, limits, now)


async def offer(order: dict[str, Any], limits: Limits, now: datetime) -> str:
    """Offer an order that no store holds to the next store in reach."""
    order_pk = int(order["id"])
    spot, route, member_id = await _route(
        order["phone"], order["latitude"], order["longitude"], limits, order_pk
    )
    joined = bool(order["joined"])
    if spot is not None and member_id is None:
        member_id, joined = (
            await join_for_order(order["phone"], order["name"], spot.store, now),
            True,
        )
    elif spot is not None and joined:
        # Joined at a store that had the order (held now, or before it went unrouted).
        assert member_id is not None
        await move_order_member(member_id, spot.store.id)
    await fetch(
        "UPDATE o2o_order SET status = {}, route = {}, store = {}, distance_km = {},"
        " routed_at = {}, accepted_by = NULL, accepted_at = NULL, member = {}, joined = {},"
        " region = COALESCE(region, {}) WHERE id = {}",
        "routed" if spot else "unrouted",
        route,
        spot.store.id if spot else None,
        spot.distance_km if spot else None,
        now,
        member_id,
        joined,
        spot.region if spot else None,
        order_pk,
    )
    if spot is None:
        return "unrouted"
    assert member_id is not None
    await routed_to(order_pk, order["order_id"], spot, member_id, route, order["address"], now)
    return "routed"


@dataclass(slots=True)
class RerouteReport:
    timed_out: int = 0
    offered: int = 0  # unrouted orders a store now took
    unrouted: int = 0  # orders left with no store in reach
    moves: list[str] = field(default_factory=list)


async def reroute_overdue(limits: Limits, batch: int = 500) -> RerouteReport:
    """Every order a store has held unaccepted past the time limit moves on; every
    unrouted order not looked at for as long is offered again (a store may have come
    within reach). One transaction per order: a store's lock is held briefly."""
    report = RerouteReport()
    cutoff = clock.now() - timedelta(minutes=limits.accept_minutes)
    due = await fetch(
        "SELECT id FROM o2o_order WHERE status IN ('routed', 'unrouted') AND routed_at <= {}"
        " ORDER BY routed_at, id LIMIT {}",
        cutoff,
        batch,
    )
    for row in due:
        outcome = await in_write_transaction(partial(_reroute_one, int(row["id"]), cutoff, limits))
        if outcome == "timed_out:routed":
            report.timed_out += 1
        elif outcome == "timed_out:unrouted":
            report.timed_out += 1
            report.unrouted += 1
        elif outcome == "offered:routed":
            report.offered += 1
        elif outcome == "offered:unrouted":
            report.unrouted += 1
    return report


async def _reroute_one(order_pk: int, cutoff: datetime, limits: Limits) -> str:
    order = await lock_order(
        "id = {} AND status IN ('routed', 'unrouted') AND routed_at <= {}", order_pk, cutoff
    )
    if order is None:
        return "gone"  # accepted, or moved, since it was read
    if order["status"] == "routed":
        return "timed_out:" + await move_on(order, "timed_out", limits, None)
    return "offered:" + await offer(order, limits, clock.now())
