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


class PurchaseImported(PurchaseRecorded, frozen=True):
    """A purchase of the chain's history, imported with ``--score``: the score ledger
    credits it; the playbook and conversion do not hear of the past."""


class MemberImported(MemberJoined, frozen=True):
    """A member of the imported history, with ``--score``: the new-member credit only."""


class AdvisorLeft(Struct, frozen=True):
    """An advisor was deactivated, or now works at ``store_id``: the members and open
    tasks they can no longer serve need someone else."""

    advisor_id: int
    store_id: int
    active: bool


class PurchaseReturned(Struct, frozen=True):
    """Goods of a purchase brought back. ``points_owed`` are the receipt's points
    the return undoes (the score facts follow it, whatever the balance could cover);
    ``whole``: nothing of the receipt is left."""

    return_pk: int
    purchase_id: int
    member_id: int
    store_id: int
    advisor_id: int | None  # the purchase's credited advisor
    purchased_on: date
    returned_on: date
    points_owed: int
    whole: bool


class TierReached(Struct, frozen=True):
    """A member rose to a higher tier (恭喜升级)."""

    member_id: int
    store_id: int  # home store
    owning_advisor: int | None
    tier: str
    tier_name: str
    year: int  # the calendar year whose points earned it
    reached_on: date
