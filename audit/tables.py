"""One append-only row per change: a trigger refuses UPDATE and DELETE on both
databases, so the trail cannot be edited after the fact, even by the service."""

from __future__ import annotations

from piccolo.columns import BigSerial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AuditEntry(Table, tablename="audit_entry"):
    id = BigSerial(primary_key=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    who = Varchar(length=100)
    entity = Varchar(length=32, index=True)
    key = Varchar(length=200)
    action = Varchar(length=32)
    # JSON documents as text: the same on both databases, read back as written.
    before = Text(null=True, default=None)
    after = Text(null=True, default=None)
