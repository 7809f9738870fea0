"""Requests and answers of the O2O paths (docs/contract.md fixes their names)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from core.money import YuanText
from members.schemas import ClientId, Name, PhoneText

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
MAX_ORDER_LINES = 50

Status = Literal["routed", "accepted", "delivered", "unrouted"]
Route = Literal["home_store", "nearest", "unrouted"]
Event = Literal["routed", "declined", "timed_out", "accepted", "delivered"]


class AddressIn(Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(min_length=1, max_length=200, pattern=_PRINTABLE)]
    latitude: Annotated[float, Meta(ge=-90, le=90)]
    longitude: Annotated[float, Meta(ge=-180, le=180)]


class OrderLineIn(Struct, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(min_length=1, max_length=32, pattern=_PRINTABLE)]
    quantity: Annotated[int, Meta(ge=1, le=1000)]
    amount: YuanText


class OrderIn(Struct, forbid_unknown_fields=True):
    order_id: ClientId
    member_phone: PhoneText
    address: AddressIn
    lines: Annotated[list[OrderLineIn], Meta(min_length=1, max_length=MAX_ORDER_LINES)]
    placed_at: datetime
    name: Name = ""


class OrderPlaced(Struct):
    order_id: str
    status: Status
    store_code: str | None
    route: Route
    distance_km: float | None = None


class HistoryEntry(Struct):
    at: datetime
    event: Event
    store_code: str | None


class ChannelOrderOut(Struct):
    order_id: str
    status: Status
    store_code: str | None
    route: Route
    distance_km: float | None
    placed_at: datetime
    delivered_at: datetime | None
    history: list[HistoryEntry]


class OrderLineOut(Struct):
    sku: str
    quantity: int
    amount: str


class StoreOrderOut(Struct):
    order_id: str
    status: Status
    route: Route
    member_phone: str
    name: str
    address: str
    distance_km: float | None
    lines: list[OrderLineOut]
    total: str
    placed_at: datetime
    routed_at: datetime | None
    accepted_by: str | None  # advisor code
    accepted_at: datetime | None
    delivered_at: datetime | None
    receipt_id: str | None
    # While the store holds it unaccepted: minutes since it came, and the moment it
    # moves on to the next store.
    age_minutes: int
    due_by: datetime | None
    overdue: bool


class StoreOrdersOut(Struct):
    accept_minutes: int
    orders: list[StoreOrderOut]


class DeliveredIn(Struct, forbid_unknown_fields=True):
    receipt_id: ClientId  # the till's receipt for the order
    delivered_at: datetime | None = None  # now, if left out


class StoreActionOut(Struct, omit_defaults=True):
    order_id: str
    status: Literal["accepted", "declined", "delivered"]
    accepted_by: str | None = None
    purchase_id: int | None = None
    points_earned: int | None = None
    points_balance: int | None = None


class HqOrderOut(Struct):
    order_id: str
    channel: str
    status: Status
    route: Route
    store_code: str | None
    region: str | None
    member_phone: str
    address: str
    latitude: float
    longitude: float
    total: str
    placed_at: datetime
    routed_at: datetime | None
    tried: int  # stores that had it


class HqOrdersOut(Struct):
    orders: list[HqOrderOut]


class RegionRouting(Struct):
    region: str | None  # None: orders no store was ever in reach of
    orders: int
    home_store: int
    nearest: int
    unrouted: int
    home_store_share: str | None
    nearest_share: str | None
    unrouted_share: str | None
    accepted: int
    delivered: int
    median_minutes_to_accept: float | None
    median_minutes_to_deliver: float | None


class RoutingOut(Struct):
    period: str
    regions: list[RegionRouting]
    total: RegionRouting
