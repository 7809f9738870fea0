"""The playbook (which events make which follow-ups), the follow-up tasks advisors
owe members, the history of each task's status, and HQ's campaigns."""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    BigInt,
    BigSerial,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from members.tables import Advisor, Member, Purchase, Store


class PlaybookRule(Table, tablename="playbook_rule"):
    """One kind of follow-up. Offsets count days from the kind's anchor: the purchase
    day, the run-out day, the stage boundary, the last purchase, the birthday of a
    month, the registration day, or a campaign's start."""

    id = Serial(primary_key=True)
    kind = Varchar(length=32, unique=True)
    enabled = Boolean(default=True)
    due_offset_days = Integer()
    expire_offset_days = Integer()
    priority = SmallInt(default=5)  # 1 most urgent
    script = Text()
    # Kind-specific settings: milestone ages, the days of silence before reactivate.
    params = JSON(default="{}")
    updated_at = Timestamptz(default=TimestamptzNow())


class Campaign(Table, tablename="campaign"):
    id = Serial(primary_key=True)
    name = Varchar(length=100)
    starts_on = Date()
    ends_on = Date()
    script = Text()
    segment = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())


class Task(Table, tablename="task"):
    id = BigSerial(primary_key=True)
    kind = Varchar(length=32)
    # Indexed with status by the migration's (member, status).
    member = ForeignKey(Member, on_delete=OnDelete.restrict, null=False)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    assignee = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=True, default=None)
    # What the follow-up is about within its kind: the category running out, the
    # stage to move to, the month of age; part of the dedupe key.
    topic = Varchar(length=32, default="")
    reason = Varchar(length=200)
    script = Text()
    anchor_on = Date()
    due_on = Date()
    expires_on = Date()
    priority = SmallInt(default=5)
    status = Varchar(length=16, default="open")  # open | done | expired | cancelled
    status_reason = Varchar(length=32, null=True, default=None)
    # What made it, e.g. "purchase:123", "baby:45", "campaign:3".
    cause = Varchar(length=64)
    # kind + member + anchor: the same event or a rerun never makes a second task.
    dedupe_key = Varchar(length=128, unique=True)
    # Set by the outcome that completed the task: when the call happened (the
    # phone's clock) and what came of it.
    done_at = Timestamptz(null=True, default=None)
    result = Varchar(length=24, null=True, default=None)
    # A purchase soon after a reached-type outcome: which one (unique: a purchase
    # converts one task at most; a migration's index), and its amount.
    converted_purchase = ForeignKey(Purchase, on_delete=OnDelete.restrict, null=True, default=None)
    converted_fen = BigInt(null=True, default=None)
    # Insights: when an outcome was first recorded for it (applied or not), whether
    # one reached the member, and for a stage_up the day the member bought the next
    # stage within 30 days of the boundary.
    contacted_at = Timestamptz(null=True, default=None)
    reached = Boolean(default=False)
    kept_on = Date(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # For phones syncing after being offline, kept by database triggers on every
    # change: a position in commit order (PostgreSQL: the writing transaction's id),
    # and who had the task before it was reassigned.
    change_seq = BigInt(default=0)
    previous_assignee = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=True, default=None)


class TaskEvent(Table, tablename="task_event"):
    """Append-only history of a task's status and assignee."""

    id = BigSerial(primary_key=True)
    task = ForeignKey(Task, on_delete=OnDelete.cascade, null=False, index=True)
    from_status = Varchar(length=16, null=True, default=None)
    to_status = Varchar(length=16)
    reason = Varchar(length=32, null=True, default=None)
    assignee = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=True, default=None)
    at = Timestamptz()


class Outcome(Table, tablename="outcome"):
    """What happened on a call, as the phone recorded it. Append-only; unique per
    advisor by the phone's own id (a migration's index), so a replay is harmless."""

    id = BigSerial(primary_key=True)
    task = ForeignKey(Task, on_delete=OnDelete.restrict, null=False, index=True)
    advisor = ForeignKey(Advisor, on_delete=OnDelete.restrict, null=False)
    client_outcome_id = Varchar(length=64)
    channel = Varchar(length=16)
    result = Varchar(length=24)
    note = Varchar(length=500, default="")
    next_contact_on = Date(null=True, default=None)
    recorded_at = Timestamptz()
    received_at = Timestamptz()
    request_hash = Varchar(length=64)
    # Whether it completed the task (False: the task had lapsed or been cancelled
    # before the call), and the task's status it answered with.
    applied = Boolean(default=True)
    task_status = Varchar(length=16)
    callback_task = ForeignKey(Task, on_delete=OnDelete.restrict, null=True, default=None)


class TaskSummary(Table, tablename="task_summary"):
    """Tasks counted by the period their due date falls in (day, ISO week, month), per
    store, kind and campaign (0 for none): what playbook insights read. Kept by
    database triggers on ``task`` in the writing transaction, so it always equals the
    tasks it counts."""

    id = BigSerial(primary_key=True)
    store = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    period = Varchar(length=10)
    kind = Varchar(length=32)
    campaign = Integer(default=0)
    made = Integer(default=0)
    cancelled = Integer(default=0)
    contacted = Integer(default=0)
    reached = Integer(default=0)
    done = Integer(default=0)
    expired = Integer(default=0)
    converted = Integer(default=0)
    converted_fen = BigInt(default=0)
    kept = Integer(default=0)

    # UNIQUE (store, period, kind, campaign): a migration's index.
