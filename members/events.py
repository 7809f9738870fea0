"""What the members domain tells others, inside the event's own transaction. Each
event carries what its listeners need (the playbook, conversion, the score ledger),
so none of them reads the purchase or the member again."""

from __future__ import annotations

from datetime import date, datetime

from msgspec import Struct


class BoughtLine(Struct, frozen=True):
    product_id: int
    quantity: int
    category: str
    days_of_supply: int | None  # per unit, from the label
    stage: int | None  # formula stage, None for other categories


class PurchaseRecorded(Struct, frozen=True):
    purchase_id: int
    member_id: int
    store_id: int
    advisor_id: int | None  # credited: the receipt's advisor, else the owning advisor
    purchased_at: datetime
    purchased_on: date  # store-local
    total_fen: int
    points_earned: int
    lines: tuple[BoughtLine, ...]


class MemberJoined(Struct, frozen=True):
    member_id: int
    store_id: int
    joined_on: date
    do_not_contact: bool
    recruited_by: int | None = None


class AdvisorLeft(Struct, frozen=True):
    """An advisor was deactivated, or now works at ``store_id``: the members and open
    tasks they can no longer serve need someone else."""

    advisor_id: int
    store_id: int
    active: bool
