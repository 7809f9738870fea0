"""What a purchase or a registration tells the rest of the domain, inside the event's
own transaction. ``advisor_api`` wires the listeners (the follow-up playbook, the
score ledger) at start-up; members itself knows none of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class PurchaseRecorded:
    purchase_id: int
    member_id: int
    store_id: int
    advisor_id: int | None
    purchased_at: datetime
    purchased_on: date
    lines: tuple[tuple[int, int], ...]  # product id, quantity
    points_earned: int = 0


@dataclass(frozen=True, slots=True)
class MemberJoined:
    member_id: int
    store_id: int
    joined_on: date
    do_not_contact: bool
    recruited_by: int | None = None


@dataclass(frozen=True, slots=True)
class AdvisorLeft:
    """An advisor was deactivated, or now works at ``store_id``: the members and open
    tasks they can no longer serve need someone else."""

    advisor_id: int
    store_id: int
    active: bool


PurchaseListener = Callable[[list[PurchaseRecorded]], Awaitable[None]]
MemberListener = Callable[[list[MemberJoined]], Awaitable[None]]
AdvisorListener = Callable[[list[AdvisorLeft]], Awaitable[None]]

purchase_listeners: list[PurchaseListener] = []
member_listeners: list[MemberListener] = []
advisor_listeners: list[AdvisorListener] = []


def listen(
    on_purchases: PurchaseListener | None = None,
    on_members: MemberListener | None = None,
    on_advisor_left: AdvisorListener | None = None,
) -> None:
    """Add listeners once; wiring twice (an app factory called again) adds nothing."""
    for listener, listeners in (
        (on_purchases, purchase_listeners),
        (on_members, member_listeners),
        (on_advisor_left, advisor_listeners),
    ):
        if listener is not None and listener not in listeners:
            listeners.append(listener)  # type: ignore[arg-type]


async def purchases_recorded(events: list[PurchaseRecorded]) -> None:
    if events:
        for listener in purchase_listeners:
            await listener(events)


async def members_joined(events: list[MemberJoined]) -> None:
    if events:
        for listener in member_listeners:
            await listener(events)


async def advisors_left(events: list[AdvisorLeft]) -> None:
    if events:
        for listener in advisor_listeners:
            await listener(events)
