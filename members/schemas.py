"""Requests and answers of the POS and registry paths (docs/contract.md fixes their
names)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from core.errors import FieldError
from core.money import YuanText

# No control characters in free text: PostgreSQL refuses NUL in text, and a name
# with a newline in it breaks every CSV and push message it is put into.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Code = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
ClientId = Annotated[str, Meta(min_length=1, max_length=64, pattern=_PRINTABLE)]
Name = Annotated[str, Meta(max_length=64, pattern=_PRINTABLE)]
RequiredName = Annotated[str, Meta(min_length=1, max_length=100, pattern=_PRINTABLE)]
# A mainland mobile as people type it: 13800138000, +86 138-0013-8000, 0086…, with
# full-width digits too. The shape is the schema's; whether it is a mobile is a 422.
PhoneText = Annotated[
    str,
    Meta(
        min_length=11,
        max_length=32,
        pattern=r"^[+]?[0-9\uff10-\uff19][0-9\uff10-\uff19 ()\-.]{10,31}$",
        examples=["13800138000"],
    ),
]

MAX_BATCH = 500
MAX_LINES = 200


# --- POS: members ------------------------------------------------------------


class BabyIn(Struct, forbid_unknown_fields=True):
    name: Name = ""
    birth_date: date | None = None
    due_date: date | None = None


class MemberRegistration(Struct):
    phone: PhoneText
    name: Name = ""
    advisor_code: Code | None = None
    registered_at: datetime | None = None
    babies: Annotated[list[BabyIn], Meta(max_length=10)] = msgspec.field(default_factory=list)
    do_not_contact: bool = False


class MemberRegistered(Struct):
    member_id: int
    created: bool


class BabyOut(Struct):
    baby_id: int
    name: str
    birth_date: date | None
    due_date: date | None
    age_months: int | None
    stage: int | None
    # The day the next formula stage begins (the baby turns 6, 12 or 36 months: the
    # stage_up call's anchor); None before birth and on the last stage.
    next_stage_on: date | None = None


class ExpiringPoints(Struct):
    points: int
    expires_on: date  # the last day they can be spent


class PosMemberOut(Struct):
    member_id: int
    name: str
    points_balance: int
    babies: list[BabyOut]
    home_store: str
    owning_advisor: str | None
    tier: str | None  # a tier code of the policy (vip, gold …), None below the first
    tier_name: str | None
    # Every lot with points left, the soonest to lapse first.
    points_expiring: list[ExpiringPoints]


# --- POS: purchases ----------------------------------------------------------


class PurchaseLineIn(Struct):
    sku: Annotated[str, Meta(min_length=1, max_length=32, pattern=_PRINTABLE)]
    quantity: Annotated[int, Meta(ge=1, le=10_000)]
    amount: YuanText


class PurchaseIn(Struct):
    receipt_id: ClientId
    member_phone: PhoneText
    purchased_at: datetime
    lines: Annotated[list[PurchaseLineIn], Meta(min_length=1, max_length=MAX_LINES)]
    advisor_code: Code | None = None


class PurchaseOut(Struct):
    purchase_id: int
    points_earned: int
    points_balance: int


class PurchaseBatchIn(Struct):
    # Items stay loose here so that one malformed receipt is rejected on its own
    # instead of failing the whole batch; each is checked against PurchaseIn.
    purchases: Annotated[
        list[dict[str, Any]],
        Meta(min_length=1, max_length=MAX_BATCH, description="up to 500 PurchaseIn objects"),
    ]


ReceiptStatus = Literal["created", "duplicate", "rejected"]


class ReceiptResult(Struct, omit_defaults=True):
    receipt_id: str
    status: ReceiptStatus
    error: str | None = None
    errors: list[FieldError] | None = None
    purchase_id: int | None = None
    points_earned: int | None = None
    points_balance: int | None = None


class PurchaseBatchOut(Struct):
    results: list[ReceiptResult]


# --- POS: redemptions --------------------------------------------------------


class GoodsLineIn(Struct, forbid_unknown_fields=True):
    """Goods taken for points, or brought back: the SKU, how many, and (for a
    return, required) the amount paid for them."""

    sku: Annotated[str, Meta(min_length=1, max_length=32, pattern=_PRINTABLE)]
    quantity: Annotated[int, Meta(ge=1, le=10_000)]
    amount: YuanText | None = None


class RedemptionIn(Struct):
    redemption_id: ClientId
    member_phone: PhoneText
    points: Annotated[int, Meta(ge=1, le=10_000_000)]
    redeemed_at: datetime
    lines: Annotated[list[GoodsLineIn], Meta(max_length=MAX_LINES)] | None = None


class RedemptionOut(Struct):
    redemption_id: str
    points: int
    points_balance: int
    value: YuanText  # the points at the rate in force: what the brand owes the store


# --- POS: returns --------------------------------------------------------------


class ReturnIn(Struct, forbid_unknown_fields=True):
    return_id: ClientId
    receipt_id: ClientId
    returned_at: datetime
    # No lines: everything of the receipt not returned yet.
    lines: Annotated[list[GoodsLineIn], Meta(min_length=1, max_length=MAX_LINES)] | None = None


class ReturnOut(Struct):
    return_id: str
    points_reversed: int
    points_balance: int
    shortfall: int  # the receipt's points already spent: they could not be taken back


# --- HQ: the points policy and promotions ----------------------------------------

TierCode = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[a-z0-9_]+$")]


class TierIO(Struct, forbid_unknown_fields=True):
    code: TierCode
    name: Annotated[str, Meta(min_length=1, max_length=20, pattern=_PRINTABLE)]
    min_points_in_year: Annotated[int, Meta(ge=1, le=100_000_000)]


class PointsPolicyIO(Struct, forbid_unknown_fields=True):
    value_per_100_points: YuanText
    expiry_months: Annotated[int, Meta(ge=1, le=120)]
    expiry_warning_days: Annotated[int, Meta(ge=1, le=365)]
    tiers: Annotated[list[TierIO], Meta(max_length=10)]


class PromotionIn(Struct, forbid_unknown_fields=True):
    promotion_id: ClientId
    name: RequiredName
    starts_on: date
    ends_on: date
    multiplier: Annotated[int, Meta(ge=2, le=10)]
    skus: (
        Annotated[
            list[Annotated[str, Meta(min_length=1, max_length=32)]],
            Meta(min_length=1, max_length=500),
        ]
        | None
    ) = None
    categories: (
        Annotated[
            list[Annotated[str, Meta(min_length=1, max_length=32)]],
            Meta(min_length=1, max_length=50),
        ]
        | None
    ) = None
    store_codes: Annotated[list[Code], Meta(min_length=1, max_length=25_000)] | None = None
    region: Annotated[str, Meta(min_length=1, max_length=50, pattern=_PRINTABLE)] | None = None
    tiers: Annotated[list[TierCode], Meta(min_length=1, max_length=10)] | None = None


class PromotionOut(Struct):
    promotion_id: str
    name: str
    starts_on: date
    ends_on: date
    multiplier: int
    skus: list[str] | None
    categories: list[str] | None
    store_codes: list[str] | None
    region: str | None
    tiers: list[str] | None


# --- settlement ----------------------------------------------------------------------


class SettlementFigures(Struct):
    points_issued: int
    points_redeemed: int
    points_reversed: int
    points_expired: int
    redeemed_value: YuanText  # what the brand owes the store


class SettlementLineOut(SettlementFigures):
    store_code: str
    store_name: str
    region: str


class Settlement(Struct):
    period: str
    frozen: bool  # the month was closed: these lines no longer change
    stores: list[SettlementLineOut]
    total: SettlementFigures


class RedemptionView(Struct):
    redemption_id: str
    member_phone: str  # masked: 138****8000
    points: int
    value: YuanText
    redeemed_at: datetime
    lines: list[GoodsLineIn]


class StoreSettlement(Struct):
    period: str
    frozen: bool
    line: SettlementLineOut
    redemptions: list[RedemptionView]


# --- the member at a glance ------------------------------------------------------


class LedgerEntry(Struct):
    kind: str
    points: int
    occurred_at: datetime
    store_code: str


class PurchaseLineView(Struct):
    sku: str
    name: str
    quantity: int
    amount: str


class PurchaseView(Struct):
    purchase_id: int
    receipt_id: str
    store_code: str
    purchased_at: datetime
    total: str
    points_earned: int
    lines: list[PurchaseLineView]


class MemberProfile(Struct):
    """The member as the members domain knows them: the member view's first part."""

    member_id: int
    name: str
    phone: str
    home_store: str
    owning_advisor: str | None
    joined_on: date
    do_not_contact: bool
    wrong_number_reported: bool
    babies: list[BabyOut]
    points_balance: int
    tier: str | None
    tier_name: str | None
    points_expiring: list[ExpiringPoints]  # every lot with points left, soonest first
    ledger: list[LedgerEntry]
    purchases: list[PurchaseView]
    purchases_total: int
    # RN3: the latest purchase came within 90 days of the one before it.
    repeat_within_90_days: bool


class MemberHit(Struct):
    """A member found by a search: enough to know who is on the phone."""

    member_id: int
    name: str
    phone: str
    babies: list[BabyOut]
    points_balance: int
    tier: str | None
    last_purchase_on: date | None
    do_not_contact: bool


class MemberSearchOut(Struct):
    q: str
    # How ``q`` was read: the phone's last four digits, a whole phone, or a name's start.
    by: Literal["phone_tail", "phone", "name"]
    offset: int
    limit: int
    members: list[MemberHit]
    more: bool  # another page follows


# --- HQ: the registry --------------------------------------------------------


class StoreIn(Struct):
    name: RequiredName
    region: Annotated[str, Meta(min_length=1, max_length=50, pattern=_PRINTABLE)]
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "Asia/Shanghai"
    latitude: Annotated[float, Meta(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Meta(ge=-180, le=180)] | None = None
    # Takes O2O orders; left out, the store keeps what it had (a new store: false).
    o2o: bool | msgspec.UnsetType = msgspec.UNSET


class StoreOut(Struct):
    code: str
    name: str
    region: str
    timezone: str
    latitude: float | None
    longitude: float | None
    o2o: bool = False


class AdvisorIn(Struct):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=_PRINTABLE)]
    phone: PhoneText
    store_code: Code
    active: bool = True


class AdvisorOut(Struct):
    code: str
    name: str
    phone: str
    store_code: str
    active: bool


class ProductIn(Struct):
    name: RequiredName
    category: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z][a-z_]*$")]
    stage: Annotated[int, Meta(ge=1, le=4)] | None = None
    days_of_supply: Annotated[int, Meta(ge=1, le=366)] | None = None
    points_eligible: bool = True


class ProductOut(Struct):
    sku: str
    name: str
    category: str
    stage: int | None
    days_of_supply: int | None
    points_eligible: bool
