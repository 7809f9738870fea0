"""Reading the trail: newest last, filtered by entity and time, a page at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from audit.schemas import AuditEntryOut, AuditOut
from audit.tables import AuditEntry
from core import clock

MAX_PAGE = 1000


def _entry(row: dict[str, Any]) -> AuditEntryOut:
    at = row["at"]
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return AuditEntryOut(
        at=at,
        who=row["who"],
        entity=row["entity"],
        key=row["key"],
        action=row["action"],
        before=None if row["before"] is None else msgspec.json.decode(row["before"]),
        after=None if row["after"] is None else msgspec.json.decode(row["after"]),
    )


async def entries(
    entity: str | None = None,
    since: datetime | None = None,
    keys: Sequence[str] | None = None,
    after_id: int = 0,
    limit: int = MAX_PAGE,
    newest_first: bool = False,
) -> AuditOut:
    """The trail in the order it was written (for a page: the newest first)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = (
        AuditEntry.select()
        .where(AuditEntry.id > after_id)
        .order_by(AuditEntry.id, ascending=not newest_first)
        .limit(limit + 1)
    )
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if keys is not None:
        query = query.where(AuditEntry.key.is_in(list(keys) or [""]))
    rows = await query
    more = len(rows) > limit
    rows = rows[:limit]
    found = [_entry(row) for row in rows]
    return AuditOut(found, next_after_id=int(rows[-1]["id"]) if more else None)


CSV_HEADER = ("时间", "操作人", "对象", "编号", "操作", "修改前", "修改后")


def entries_csv(found: AuditOut, timezone: str = clock.DEFAULT_TIMEZONE) -> bytes:
    """The trail for Excel: UTF-8 with a byte-order mark, times in HQ's zone."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    zone = clock.zone(timezone)
    for e in found.entries:
        writer.writerow(
            (
                e.at.astimezone(zone).isoformat(timespec="seconds"),
                e.who,
                e.entity,
                e.key,
                e.action,
                "" if e.before is None else msgspec.json.encode(e.before).decode(),
                "" if e.after is None else msgspec.json.encode(e.after).decode(),
            )
        )
    return ("\ufeff" + out.getvalue()).encode()
