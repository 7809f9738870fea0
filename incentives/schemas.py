"""League tables, contests, scores and bonus statements as the API shows them.
Scores and money are decimal strings (exact); counts and points are integers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from core.csvfile import Rejected
from core.money import DecimalText, ShareText, YuanText
from core.periods import MONTH_PATTERN

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
ScopeText = Annotated[str, Meta(min_length=1, max_length=60, pattern=_PRINTABLE)]
StoreCode = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
StorePair = Annotated[list[StoreCode], Meta(min_length=2, max_length=2)]


class Ranking(Struct):
    """A line of a league table: its rank, score and the facts behind it."""

    rank: int
    score: str
    new_members: int
    points: int
    tasks_done: int
    tasks_converted: int
    rank_change: int | None


class AdvisorEntry(Ranking):
    advisor_id: int
    advisor_code: str
    advisor_name: str
    store_code: str


class StoreEntry(Ranking):
    store_id: int
    store_code: str
    store_name: str
    region: str
    active_advisors: int | None = None


class AdvisorTable(Struct):
    scope: str
    period: str
    first_day: date
    last_day: date
    entries: list[AdvisorEntry]
    me: AdvisorEntry | None = None


class StoreTable(Struct):
    scope: str
    period: str
    first_day: date
    last_day: date
    per_advisor: bool
    entries: list[StoreEntry]
    me: StoreEntry | None = None
    mine: list[StoreEntry] = []


class ScoreWeightsIO(Struct, forbid_unknown_fields=True):
    new_member: DecimalText | None = None
    points: DecimalText | None = None
    task_done: DecimalText | None = None
    task_converted: DecimalText | None = None


class BonusRatesIn(Struct, forbid_unknown_fields=True):
    effective_from: Annotated[str, Meta(pattern=MONTH_PATTERN, examples=["2026-11"])]
    per_new_member: YuanText
    per_1000_points: YuanText
    completion_gate: ShareText | None = None  # 0.8 pays only at 80% completion or better


class BonusRatesOut(Struct):
    effective_from: str
    per_new_member: Decimal
    per_1000_points: Decimal
    completion_gate: Decimal | None


class MyRanks(Struct):
    store: int
    region: int
    national: int


class MyScore(Struct):
    period: str
    first_day: date
    last_day: date
    new_members: int
    points: int
    tasks_done: int
    tasks_converted: int
    completion_rate: str | None
    score: str
    bonus_month: str
    bonus_estimate: Decimal
    bonus_final: bool  # the month is closed: this is what the statement pays
    rank: MyRanks
    target: MyTarget | None
    attainment: Attainment | None


class LedgerRef(Struct):
    entries: int
    first_entry: int
    last_entry: int
    href: str  # the ledger rows behind the line


class StatementFigures(Struct):
    """A bonus statement line's figures: who, regular or an adjustment for a day of
    an earlier month, and what the pay is reckoned from."""

    advisor_code: str
    advisor_name: str
    store_code: str
    store_name: str
    line: Literal["regular", "adjustment"]
    original_date: date | None
    new_members: int
    points: int
    tasks_done: int
    tasks_converted: int
    completion_rate: str | None
    gate_met: bool


class StatementLineOut(StatementFigures):
    new_member_bonus: Decimal
    points_bonus: Decimal
    amount: Decimal
    ledger: LedgerRef


class PayChange(Struct):
    """A change on the audit trail that affects this statement's pay."""

    at: datetime
    who: str
    entity: str
    key: str
    note: str  # "rates changed on 2026-11-03 10:15 by hq:13800000001"


class BonusStatementOut(Struct):
    period: str
    status: Literal["open", "closed"]
    closed_at: datetime | None
    rates: BonusRatesOut
    total: Decimal
    lines: list[StatementLineOut]
    changes: list[PayChange] = []


class LedgerEntryOut(Struct):
    entry_id: int
    kind: str
    amount: int
    counts_on: date
    booked_month: str
    source: str
    store_code: str
    member_id: int | None
    purchase_id: int | None
    task_id: int | None
    recorded_at: datetime


class LedgerPage(Struct):
    advisor_code: str
    booked_month: str
    original_date: date | None
    entries: list[LedgerEntryOut]
    next_after: int | None


class ContestIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=_PRINTABLE)]
    kind: Literal["league", "pk"]
    subject: Literal["advisor", "store"]
    scope: ScopeText
    starts_on: date
    ends_on: date
    weights: ScoreWeightsIO | None = None
    pairs: Literal["auto"] | Annotated[list[StorePair], Meta(max_length=5000)] | None = None


class PairOut(Struct):
    store_a: str
    store_b: str


class ContestHead(Struct):
    """What names a contest, in its answers and its standings."""

    contest_id: int
    name: str
    kind: str
    subject: str
    scope: str
    starts_on: date
    ends_on: date
    weights: dict[str, Decimal]


class ContestOut(ContestHead):
    pairs: list[PairOut] | None = None
    unpaired: list[str] | None = None


class PkSide(Struct):
    store_code: str
    store_name: str
    score: str
    new_members: int
    points: int


class PkMatch(Struct):
    store_a: PkSide
    store_b: PkSide
    leader: str | None  # the store code ahead, None when level
    decided: bool  # the window is over: the leader is the winner


class PkRecord(Struct):
    rank: int
    store_code: str
    store_name: str
    wins: int
    losses: int
    draws: int
    score: str


class Standings(ContestHead):
    final: bool
    advisors: list[AdvisorEntry] | None = None
    stores: list[StoreEntry] | None = None
    me: AdvisorEntry | None = None  # an advisor league: the caller's line
    my_store: StoreEntry | None = None  # a store league: the caller's store's
    pairs: list[PkMatch] | None = None
    table: list[PkRecord] | None = None


# --- targets -------------------------------------------------------------------

Code = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]{1,16}$")]
NewMembers = Annotated[int, Meta(ge=0, le=1_000_000)]
Points = Annotated[int, Meta(ge=0, le=10**12)]
TARGET_LINES = 100_000


class TargetIn(Struct, forbid_unknown_fields=True):
    subject: Literal["store", "advisor"]
    code: Code
    new_members: NewMembers
    points: Points


class TargetsIn(Struct, forbid_unknown_fields=True):
    targets: Annotated[list[TargetIn], Meta(max_length=TARGET_LINES)]


class AdvisorShareIn(Struct, forbid_unknown_fields=True):
    code: Code
    new_members: NewMembers
    points: Points


class SplitIn(Struct, forbid_unknown_fields=True):
    advisors: Annotated[list[AdvisorShareIn], Meta(max_length=500)]


class SaveReport(Struct):
    month: str
    saved: int
    rejected: list[Rejected]


class Figures(Struct):
    new_members: int
    points: int


class Attainment(Struct):
    new_members: str | None
    points: str | None


class TargetRow(Struct):
    subject: str
    code: str
    name: str
    store_code: str
    target: Figures | None
    actual: Figures
    attainment: Attainment
    derived: bool  # an advisor's share of the store's target, not one of their own


class TargetTable(Struct):
    month: str
    scope: str
    subject: str
    rows: list[TargetRow]


class MyTarget(Struct):
    """The advisor's target for the month the score's period starts in, and that
    month's actual figures."""

    month: str
    new_members: int
    points: int
    derived: bool
    actual: Figures
