"""Advisors' devices, and the push outbox: every push is a row decided in the
transaction of its cause, then sent to each of the advisor's devices by a
dispatcher that records every device's answer."""

from __future__ import annotations

from piccolo.columns import (
    BigSerial,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from members.tables import Advisor


class Device(Table, tablename="device"):
    id = BigSerial(primary_key=True)
    advisor = ForeignKey(Advisor, on_delete=OnDelete.cascade, null=False, index=True)
    token = Varchar(length=1024, unique=True)
    platform = Varchar(length=8)  # android | ios | web
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class PushOutbox(Table, tablename="push_outbox"):
    """One push to one advisor (all their devices)."""

    id = BigSerial(primary_key=True)
    advisor = ForeignKey(Advisor, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=16)  # digest | urgent | rank | summary
    dedupe_key = Varchar(length=120, unique=True)
    title = Varchar(length=100)
    body = Varchar(length=500)
    data = Text(default="{}")  # JSON object of strings: what the app routes on
    due_at = Timestamptz()  # held past quiet hours
    deadline_at = Timestamptz()  # retried until then, failed after
    # pending | sent | failed | folded (into a summary) | no_device
    status = Varchar(length=10, default="pending")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz()
    lease_until = Timestamptz(null=True, default=None)  # claimed by a dispatcher until
    last_error = Varchar(length=300, null=True, default=None)
    folded = Integer(default=0)  # a summary: how many pushes it stands for
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)


class PushDelivery(Table, tablename="push_delivery"):
    """One push to one device, and what FCM answered."""

    id = BigSerial(primary_key=True)
    outbox = ForeignKey(PushOutbox, on_delete=OnDelete.cascade, null=False)
    token = Varchar(length=1024)
    status = Varchar(length=10, default="pending")  # pending | sent | failed | dropped
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz()
    message_name = Varchar(length=200, null=True, default=None)
    error = Varchar(length=300, null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
