"""What the orders domain tells others, inside the order's own transaction: the
tasks domain gives the store's advisors a delivery task for an order routed to them,
cancels it when the order moves away, and closes it when the order is delivered."""

from __future__ import annotations

from datetime import date, datetime

from msgspec import Struct


class OrderRouted(Struct, frozen=True):
    order_pk: int
    order_id: str
    store_id: int
    member_id: int
    # Back at the member's home store: their own advisor takes it.
    home_store: bool
    reason: str  # what the task and its push say
    at: datetime
    day: date  # the store's local day


class OrderMovedAway(Struct, frozen=True):
    """The store declined it or let its time limit pass: its task is void."""

    order_pk: int
    store_id: int


class OrderAccepted(Struct, frozen=True):
    order_pk: int
    store_id: int
    advisor_id: int


class OrderDelivered(Struct, frozen=True):
    order_pk: int
    store_id: int
    advisor_id: int
    at: datetime
