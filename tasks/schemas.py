"""The advisor's daily list, the playbook and campaigns as the API shows them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from members.schemas import BabyOut, ExpiringPoints, MemberProfile


class TodayCounts(Struct):
    due: int
    overdue: int
    done_today: int


class CardMember(Struct):
    member_id: int
    name: str
    phone: str
    babies: list[BabyOut]
    points_balance: int
    last_purchase_at: datetime | None
    tier: str | None
    tier_name: str | None
    # Lots lapsing within the points policy's warning days: worth a word on the call.
    points_expiring: list[ExpiringPoints]


class CardTask(Struct):
    task_id: int
    kind: str
    reason: str
    script: str
    due_date: date
    expires_on: date
    overdue: bool
    priority: int
    # HQ marks the kind urgent (a delivery, by default): the phone lists it under 紧急.
    urgent: bool = False


class Card(Struct):
    member: CardMember
    tasks: list[CardTask]


class TodayOut(Struct):
    date: date
    counts: TodayCounts
    cards: list[Card]


class RuleIO(Struct):
    kind: str
    enabled: bool
    due_offset_days: Annotated[int, Meta(ge=-366, le=366)]
    expire_offset_days: Annotated[int, Meta(ge=-366, le=366)]
    priority: int
    script: Annotated[str, Meta(max_length=1000)]
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class PlaybookIO(Struct):
    rules: list[RuleIO]


class Segment(Struct, forbid_unknown_fields=True):
    region: Annotated[str, Meta(min_length=1, max_length=50)] | None = None
    store_codes: Annotated[list[str], Meta(max_length=25_000)] | None = None
    baby_age_months: (
        Annotated[list[Annotated[int, Meta(ge=0, le=72)]], Meta(min_length=2, max_length=2)] | None
    ) = None
    last_purchase_category: Annotated[str, Meta(min_length=1, max_length=32)] | None = None


class CampaignIn(Struct):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
    starts_on: date
    ends_on: date
    segment: Segment
    script: Annotated[str, Meta(min_length=1, max_length=1000, pattern=r"^[^\x00\x7f]*$")]


class CampaignOut(Struct):
    campaign_id: int
    name: str
    starts_on: date
    ends_on: date
    segment: Segment
    script: str
    tasks_created: int


class SyncTask(Struct):
    task_id: int
    kind: str
    status: str
    reason: str
    script: str
    due_date: date
    expires_on: date
    priority: int
    member_id: int
    member_name: str
    member_phone: str
    result: str | None
    # The task now belongs to someone else: the phone should drop it.
    reassigned_away: bool


class SyncOut(Struct):
    tasks: list[SyncTask]
    cursor: str
    more: bool


class OutcomeView(Struct):
    channel: str
    result: str
    note: str
    recorded_at: datetime
    applied: bool


class PastTask(Struct):
    task_id: int
    kind: str
    reason: str
    status: str
    due_date: date
    outcomes: list[OutcomeView]
    converted_amount: str | None


class RunOut(Struct):
    """A category the member buys: the latest purchase and the day it runs out."""

    category: str
    name: str  # the category in Chinese, as the replenish call says it
    last_bought_on: date
    units: int  # bought that day
    runs_out_on: date | None  # None: a stock-up of over a year


class MemberView(MemberProfile):
    """The member at a glance: what the members domain knows, and their tasks."""

    tasks: list[PastTask]
    # Per category, soonest first: what the replenish call counts on.
    run_outs: list[RunOut] = msgspec.field(default_factory=list)


class DoneTask(Struct):
    """A task the advisor finished today: the phone's 已完成 section."""

    task_id: int
    kind: str
    reason: str
    member_id: int
    member_name: str
    result: str | None


# --- working the list: outcomes and snoozes ------------------------------------------

Channel = Literal["phone", "wechat", "sms", "visit"]
Result = Literal[
    "reached",
    "no_answer",
    "wrong_number",
    "declined",
    "will_buy",
    "purchased",
    "delivery_requested",
    "do_not_contact",
]


class OutcomeIn(Struct):
    client_outcome_id: Annotated[
        str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")
    ]
    channel: Channel
    result: Result
    recorded_at: datetime
    note: Annotated[str, Meta(max_length=500, pattern=r"^[^\x00\x7f]*$")] = ""
    next_contact_on: date | None = None


class SnoozeIn(Struct):
    until: date


class OutcomeOut(Struct, omit_defaults=True):
    task_id: int
    status: str
    applied: bool
    callback_task_id: int | None = None
    detail: str | None = None


class SnoozeOut(Struct):
    task_id: int
    status: str
    due_date: date
