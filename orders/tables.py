"""Sales channels and their keys, the orders they send, each order's lines and the
history of where it went."""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    BigSerial,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from members.tables import Advisor, Member, Purchase, Store


class ChannelKey(Table, tablename="channel_key"):
    """A sales channel (the mini-program, the app, the web shop) and its key. Only
    the key's SHA-256 is kept: it is shown once, when made."""

    id = Serial(primary_key=True)
    name = Varchar(length=64)
    key_hash = Varchar(length=64, unique=True)
    prefix = Varchar(length=16)
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())


class O2oOrder(Table, tablename="o2o_order"):
    id = BigSerial(primary_key=True)
    channel = ForeignKey(ChannelKey, on_delete=OnDelete.restrict, null=False)
    # The channel's own id: unique per channel (a migration's index), the retry key.
    order_id = Varchar(length=64)
    # Known, or joined for this order at the store it was routed to (``joined``).
    member = ForeignKey(Member, on_delete=OnDelete.restrict, null=True, default=None)
    joined = Boolean(default=False)
    phone = Varchar(length=11)
    name = Varchar(length=64, default="")
    address = Varchar(length=200)
    latitude = DoublePrecision()
    longitude = DoublePrecision()
    placed_at = Timestamptz()
    status = Varchar(length=16)  # routed | accepted | delivered | unrouted
    route = Varchar(length=16)  # home_store | nearest | unrouted: how it got where it is
    # The first answer, what a replay gets back.
    first_route = Varchar(length=16)
    first_store = ForeignKey(Store, on_delete=OnDelete.restrict, null=True, default=None)
    first_distance_km = DoublePrecision(null=True, default=None)
    # The region of the first store it went to (HQ's figures by region); none if no
    # store was ever in reach.
    region = Varchar(length=50, null=True, default=None)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=True, default=None)
    distance_km = DoublePrecision(null=True, default=None)
    # When the store holding it got it (its time limit runs from here); for an
    # unrouted order, when a store was last looked for.
    routed_at = Timestamptz(null=True, default=None)
    accepted_by = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=True, default=None)
    accepted_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
    receipt_id = Varchar(length=64, null=True, default=None)
    purchase = ForeignKey(Purchase, on_delete=OnDelete.restrict, null=True, default=None)
    total_fen = BigInt()
    request_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())


class OrderLine(Table, tablename="o2o_order_line"):
    id = BigSerial(primary_key=True)
    o2o_order = ForeignKey(O2oOrder, on_delete=OnDelete.cascade, null=False, index=True)
    line_no = SmallInt()
    sku = Varchar(length=32)
    quantity = Integer()
    amount_fen = BigInt()


class OrderEvent(Table, tablename="o2o_order_event"):
    """Append-only: every step of an order, which the channel can read."""

    id = BigSerial(primary_key=True)
    o2o_order = ForeignKey(O2oOrder, on_delete=OnDelete.cascade, null=False, index=True)
    at = Timestamptz()
    event = Varchar(length=16)  # routed | declined | timed_out | accepted | delivered
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=True, default=None)
    advisor = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=True, default=None)
    distance_km = DoublePrecision(null=True, default=None)
