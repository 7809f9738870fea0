"""The score ledger and what is read off it: league-table summaries, contests, bonus
rates and the frozen monthly statements.

Scores and weights are integers in hundredths (a weight of 0.1 per point is 10), so
every sum is exact on SQLite and PostgreSQL alike; money is integer fen.
"""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    BigSerial,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from members.tables import Advisor, Member, Purchase, Store
from tasks.tables import Task


class ScoreFact(Table, tablename="score_fact"):
    """One fact an advisor is scored and paid on. Append-only: a task that stops
    counting gets a reversing row (amount -1), never an edit or a delete."""

    id = BigSerial(primary_key=True)
    advisor = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=False)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    kind = Varchar(length=16)  # new_member | points | task_done | task_converted
    amount = Integer()
    counts_on = Date()  # the store-local day it happened
    counts_week = Varchar(length=8)  # 2026-W47
    counts_month = Varchar(length=7)  # 2026-11
    # The bonus month it is paid in: counts_month, or the first open month after it
    # when that month had been closed by the time the fact arrived.
    booked_month = Varchar(length=7)
    source_key = Varchar(length=64, unique=True)
    member = ForeignKey(Member, on_delete=OnDelete.restrict, null=True, default=None)
    purchase = ForeignKey(Purchase, on_delete=OnDelete.restrict, null=True, default=None)
    task = ForeignKey(Task, on_delete=OnDelete.restrict, null=True, default=None)
    recorded_at = Timestamptz(default=TimestamptzNow())


class AdvisorScore(Table, tablename="advisor_score"):
    """An advisor's totals for one day, ISO week or month (``period`` as the API
    writes it), kept in the same transaction as the facts."""

    id = BigSerial(primary_key=True)
    period = Varchar(length=10)
    advisor = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=False)
    new_members = Integer(default=0)
    points = BigInt(default=0)
    tasks_done = Integer(default=0)
    tasks_converted = Integer(default=0)
    score = BigInt(default=0)  # hundredths, with the default weights


class StoreScore(Table, tablename="store_score"):
    id = BigSerial(primary_key=True)
    period = Varchar(length=10)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    new_members = Integer(default=0)
    points = BigInt(default=0)
    tasks_done = Integer(default=0)
    tasks_converted = Integer(default=0)
    score = BigInt(default=0)


class ScoreWeights(Table, tablename="score_weights"):
    """The default weights of the league tables: one row."""

    id = Serial(primary_key=True)
    new_member = Integer()
    points = Integer()
    task_done = Integer()
    task_converted = Integer()
    updated_at = Timestamptz(default=TimestamptzNow())


class BonusRates(Table, tablename="bonus_rates"):
    """Rates in force from a month on, until a later row."""

    id = Serial(primary_key=True)
    effective_from = Varchar(length=7, unique=True)
    per_new_member_fen = BigInt()
    per_1000_points_fen = BigInt()
    completion_gate_bp = Integer(null=True, default=None)  # basis points; None: no gate
    updated_at = Timestamptz(default=TimestamptzNow())


class ClosedMonth(Table, tablename="closed_month"):
    """A month whose statements are frozen, with the rates they were paid at."""

    id = Serial(primary_key=True)
    month = Varchar(length=7, unique=True)
    closed_at = Timestamptz(default=TimestamptzNow())
    per_new_member_fen = BigInt()
    per_1000_points_fen = BigInt()
    completion_gate_bp = Integer(null=True, default=None)


class StatementLine(Table, tablename="statement_line"):
    """One frozen line of a closed month's bonus statement."""

    id = BigSerial(primary_key=True)
    month = Varchar(length=7, index=True)
    position = Integer()
    advisor = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=False)
    advisor_code = Varchar(length=16)
    advisor_name = Varchar(length=64)
    store_code = Varchar(length=16)
    store_name = Varchar(length=100)
    line = Varchar(length=12)  # regular | adjustment
    original_date = Date(null=True, default=None)
    new_members = Integer()
    points = BigInt()
    tasks_done = Integer()
    tasks_converted = Integer()
    completion_rate = Varchar(length=8, null=True, default=None)
    gate_met = Boolean()
    new_member_fen = BigInt()
    points_fen = BigInt()
    amount_fen = BigInt()
    entries = Integer()
    first_entry = BigInt()
    last_entry = BigInt()


class Contest(Table, tablename="contest"):
    id = Serial(primary_key=True)
    name = Varchar(length=100)
    kind = Varchar(length=8)  # league | pk
    subject = Varchar(length=8)  # advisor | store
    scope = Varchar(length=60)
    starts_on = Date()
    ends_on = Date()
    new_member = Integer()
    points = Integer()
    task_done = Integer()
    task_converted = Integer()
    created_at = Timestamptz(default=TimestamptzNow())


class ContestPair(Table, tablename="contest_pair"):
    id = Serial(primary_key=True)
    contest = ForeignKey(Contest, on_delete=OnDelete.cascade, null=False, index=True)
    position = Integer()
    store_a = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    store_b = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)


class Target(Table, tablename="target"):
    """A month's target of new members and points for a store or an advisor: set by HQ
    (stores, and advisors if it likes), split by the owner among a store's advisors."""

    id = Serial(primary_key=True)
    month = Varchar(length=7)
    subject = Varchar(length=8)  # store | advisor
    subject_id = Integer()
    new_members = Integer(default=0)
    points = BigInt(default=0)
    set_by = Varchar(length=8)  # hq | owner
    updated_at = Timestamptz(default=TimestamptzNow())

    # UNIQUE (month, subject, subject_id): a migration's index.
