"""The orders' read side: a channel's order with its history, a store's orders with
their age against the time limit, HQ's queue, and routing figures by region."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from core import clock
from core.db import fetch, in_list, is_postgres, rows_by
from core.errors import NotFound
from core.money import share, yuan_text
from core.periods import Period
from members.queries import ADVISORS, STORES
from orders.schemas import (
    ChannelOrderOut,
    HistoryEntry,
    HqOrderOut,
    OrderLineOut,
    RegionRouting,
    RoutingOut,
    StoreOrderOut,
)

MAX_LIST = 200


def _at(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


async def channel_order(channel_id: int, order_id: str) -> ChannelOrderOut:
    """A channel's own order; another channel's is not found."""
    rows = await fetch(
        "SELECT o.id, o.order_id, o.status, o.route, o.distance_km, o.placed_at,"
        f" o.delivered_at, s.code AS store_code FROM o2o_order o LEFT JOIN {STORES} s"
        " ON s.id = o.store WHERE o.channel = {} AND o.order_id = {}",
        channel_id,
        order_id,
    )
    if not rows:
        raise NotFound(f"no order {order_id}")
    row = rows[0]
    history = await fetch(
        f"SELECT e.at, e.event, s.code AS store_code FROM o2o_order_event e LEFT JOIN {STORES} s"
        " ON s.id = e.store WHERE e.o2o_order = {} ORDER BY e.id",
        row["id"],
    )
    return ChannelOrderOut(
        order_id=row["order_id"],
        status=row["status"],
        store_code=row["store_code"],
        route=row["route"],
        distance_km=row["distance_km"],
        placed_at=_at(row["placed_at"]),  # type: ignore[arg-type]
        delivered_at=_at(row["delivered_at"]),
        history=[HistoryEntry(_at(h["at"]), h["event"], h["store_code"]) for h in history],  # type: ignore[arg-type]
    )


async def store_orders(
    store_id: int, status: str | None, accept_minutes: int, limit: int = MAX_LIST
) -> list[StoreOrderOut]:
    """A store's orders, those waiting first, newest first within. Orders that moved
    away from the store are no longer its."""
    where = "o.store = {}"
    args: list[Any] = [store_id]
    if status:
        where += " AND o.status = {}"
        args.append(status)
    return [o for _, o in await _store_rows(where, args, accept_minutes, limit)]


async def store_orders_by_pk(
    store_id: int, order_pks: list[int], accept_minutes: int
) -> dict[int, StoreOrderOut]:
    """The store's orders among ``order_pks`` (those of the delivery tasks on an
    advisor's list), by their key; one that moved away is not among them."""
    if not order_pks:
        return {}
    cond, args = in_list(order_pks, "bigint")
    found = await _store_rows(
        f"o.store = {{}} AND o.id {cond}", [store_id, *args], accept_minutes, len(order_pks)
    )
    return dict(found)


async def _store_rows(
    where: str, args: list[Any], accept_minutes: int, limit: int
) -> list[tuple[int, StoreOrderOut]]:
    rows = await fetch(
        "SELECT o.id, o.order_id, o.status, o.route, o.phone, o.name, o.address, o.distance_km,"
        " o.total_fen, o.placed_at, o.routed_at, o.accepted_at, o.delivered_at, o.receipt_id,"
        f" a.code AS accepted_by FROM o2o_order o LEFT JOIN {ADVISORS} a ON a.id = o.accepted_by"
        f" WHERE {where} ORDER BY CASE o.status WHEN 'routed' THEN 0 WHEN 'accepted' THEN 1"
        " ELSE 2 END, o.placed_at DESC, o.id DESC LIMIT {}",
        *args,
        limit,
    )
    lines = await rows_by(
        "o2o_order",
        "SELECT o2o_order, sku, quantity, amount_fen FROM o2o_order_line"
        " WHERE o2o_order {ids} ORDER BY line_no",
        [r["id"] for r in rows],
    )
    now = clock.now()
    return [
        (int(r["id"]), _store_order(r, lines.get(r["id"], []), now, accept_minutes)) for r in rows
    ]


def _store_order(
    r: dict[str, Any], lines: list[dict[str, Any]], now: datetime, accept_minutes: int
) -> StoreOrderOut:
    routed_at = _at(r["routed_at"])
    due_by = (
        routed_at + timedelta(minutes=accept_minutes)
        if routed_at and r["status"] == "routed"
        else None
    )
    return StoreOrderOut(
        order_id=r["order_id"],
        status=r["status"],
        route=r["route"],
        member_phone=r["phone"],
        name=r["name"],
        address=r["address"],
        distance_km=r["distance_km"],
        lines=[
            OrderLineOut(x["sku"], int(x["quantity"]), yuan_text(int(x["amount_fen"])))
            for x in lines
        ],
        total=yuan_text(int(r["total_fen"])),
        placed_at=_at(r["placed_at"]),  # type: ignore[arg-type]
        routed_at=routed_at,
        accepted_by=r["accepted_by"],
        accepted_at=_at(r["accepted_at"]),
        delivered_at=_at(r["delivered_at"]),
        receipt_id=r["receipt_id"],
        age_minutes=max(0, int((now - routed_at).total_seconds() // 60)) if routed_at else 0,
        due_by=due_by,
        overdue=due_by is not None and now > due_by,
    )


async def hq_orders(status: str | None, limit: int, offset: int) -> list[HqOrderOut]:
    """Orders chain-wide (HQ's unrouted queue: ``status=unrouted``), oldest waiting first."""
    where, args = ("WHERE o.status = {}", [status]) if status else ("", [])
    rows = await fetch(
        "SELECT o.order_id, c.name AS channel, o.status, o.route, s.code AS store_code,"
        " o.region, o.phone, o.address, o.latitude, o.longitude, o.total_fen, o.placed_at,"
        " o.routed_at, (SELECT COUNT(*) FROM o2o_order_event e WHERE e.o2o_order = o.id"
        " AND e.event = 'routed') AS tried"
        f" FROM o2o_order o JOIN channel_key c ON c.id = o.channel LEFT JOIN {STORES} s"
        f" ON s.id = o.store {where} ORDER BY o.placed_at, o.id LIMIT {{}} OFFSET {{}}",
        *args,
        limit,
        offset,
    )
    return [
        HqOrderOut(
            order_id=r["order_id"],
            channel=r["channel"],
            status=r["status"],
            route=r["route"],
            store_code=r["store_code"],
            region=r["region"],
            member_phone=r["phone"],
            address=r["address"],
            latitude=float(r["latitude"]),
            longitude=float(r["longitude"]),
            total=yuan_text(int(r["total_fen"])),
            placed_at=_at(r["placed_at"]),  # type: ignore[arg-type]
            routed_at=_at(r["routed_at"]),
            tried=int(r["tried"]),
        )
        for r in rows
    ]


async def routing_figures(period: Period, tz: Any) -> RoutingOut:
    """Per region of the first store an order went to (None: never in reach of one):
    orders placed in the period, how many went where now, the share of each, and the
    median minutes from placing to accepted and to delivered."""
    start = clock.day_bounds(period.first, tz)[0]
    end = clock.day_bounds(period.last, tz)[1]
    minutes = {
        "accept": _minutes("o.accepted_at", "o.placed_at"),
        "deliver": _minutes("o.delivered_at", "o.placed_at"),
    }
    rows = await fetch(
        f"SELECT o.region, o.route, o.status, {minutes['accept']} AS to_accept,"
        f" {minutes['deliver']} AS to_deliver FROM o2o_order o"
        " WHERE o.placed_at >= {} AND o.placed_at < {}",
        start,
        end,
    )
    by_region: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_region[row["region"]].append(row)
    regions = [
        _region_figures(region, rows)
        for region, rows in sorted(by_region.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    ]
    return RoutingOut(period=period.name, regions=regions, total=_region_figures(None, rows))


def _minutes(later: str, earlier: str) -> str:
    if is_postgres():
        return f"EXTRACT(EPOCH FROM ({later} - {earlier})) / 60.0"
    return f"(julianday({later}) - julianday({earlier})) * 1440.0"


def _median(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def _region_figures(region: str | None, rows: list[dict[str, Any]]) -> RegionRouting:
    n = len(rows)
    counts = {route: sum(1 for r in rows if r["route"] == route) for route in ROUTES}
    return RegionRouting(
        region=region,
        orders=n,
        home_store=counts["home_store"],
        nearest=counts["nearest"],
        unrouted=counts["unrouted"],
        home_store_share=share(counts["home_store"], n),
        nearest_share=share(counts["nearest"], n),
        unrouted_share=share(counts["unrouted"], n),
        accepted=sum(1 for r in rows if r["to_accept"] is not None),
        delivered=sum(1 for r in rows if r["to_deliver"] is not None),
        median_minutes_to_accept=_median([r["to_accept"] for r in rows]),
        median_minutes_to_deliver=_median([r["to_deliver"] for r in rows]),
    )


ROUTES = ("home_store", "nearest", "unrouted")
