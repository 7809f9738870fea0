"""Devices, and deciding pushes: each push is an outbox row written in the
transaction of its cause, unique by a dedupe key, so a crash between deciding and
sending loses nothing and deciding twice queues nothing twice.

- the morning digest, 08:30 store time, one per advisor per day with open tasks;
- an urgent push when a task of a kind HQ marks urgent (``params.urgent`` in the
  playbook) is made or handed to someone;
- each advisor's new rank when a month is closed.

Quiet hours, 21:00 to 08:00 store time: a push decided then is due at 08:00.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import partial
from typing import Any

from core import clock
from core.db import fetch, in_write_transaction, param, rows_source
from core.errors import InvalidInput
from incentives.events import MonthClosed
from incentives.queries import national_ranks
from members.queries import ADVISORS, advisor_zones, timezones_in_use
from tasks.events import TaskAssigned
from tasks.queries import day_work

QUIET_FROM, QUIET_UNTIL = time(21, 0), time(8, 0)
DIGEST_AT = time(8, 30)
# How long a push is worth retrying before it is failed.
DEADLINE = {
    "digest": timedelta(hours=6),
    "urgent": timedelta(hours=24),
    "rank": timedelta(days=3),
    "summary": timedelta(hours=12),
}
OUTBOX_COLUMNS = (
    "advisor, kind, dedupe_key, title, body, data, due_at, deadline_at, status, attempts,"
    " next_attempt_at, created_at"
)


def mask(token: str) -> str:
    """A device token as it is shown back: never whole."""
    return f"{token[:6]}…{token[-4:]}" if len(token) > 12 else "…"


def after_quiet_hours(instant: datetime, tz: tzinfo) -> datetime:
    """The instant itself, or 08:00 store time when it falls in quiet hours."""
    local = instant.astimezone(tz)
    if local.time() >= QUIET_FROM:
        day = local.date() + timedelta(days=1)
    elif local.time() < QUIET_UNTIL:
        day = local.date()
    else:
        return instant
    return datetime.combine(day, QUIET_UNTIL, tzinfo=tz).astimezone(instant.tzinfo)


# --- devices -----------------------------------------------------------------


async def register_device(advisor_id: int, token: str, platform: str) -> dict[str, Any]:
    """A token is one phone: registered again by another advisor (a shared store
    phone), it moves to them."""
    if not token.strip():
        raise InvalidInput.on("token", "is empty")
    now = clock.now()
    await fetch(
        "INSERT INTO device (advisor, token, platform, created_at, updated_at)"
        " VALUES ({}, {}, {}, {}, {}) ON CONFLICT (token) DO UPDATE SET"
        " advisor = excluded.advisor, platform = excluded.platform,"
        " updated_at = excluded.updated_at",
        advisor_id,
        token,
        platform,
        now,
        now,
    )
    return {"token": mask(token), "platform": platform}


async def remove_device(advisor_id: int, token: str) -> None:
    await fetch("DELETE FROM device WHERE advisor = {} AND token = {}", advisor_id, token)


# --- deciding pushes -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Push:
    advisor_id: int
    kind: str
    dedupe_key: str
    title: str
    body: str
    data: dict[str, str]
    due_at: datetime


async def queue(pushes: list[Push]) -> int:
    """Outbox rows in the caller's transaction; a dedupe key already queued adds
    nothing. Returns how many were new."""
    if not pushes:
        return 0
    now = clock.now()
    source, args = rows_source(
        [
            ("advisor", "int"),
            ("kind", "text"),
            ("dedupe_key", "text"),
            ("title", "text"),
            ("body", "text"),
            ("data", "text"),
            ("due_at", "timestamptz"),
            ("deadline_at", "timestamptz"),
        ],
        [
            (
                p.advisor_id,
                p.kind,
                p.dedupe_key,
                p.title,
                p.body,
                json.dumps(p.data, ensure_ascii=False),
                p.due_at,
                p.due_at + DEADLINE[p.kind],
            )
            for p in sorted(pushes, key=lambda p: p.dedupe_key)
        ],
    )
    made = await fetch(
        f"INSERT INTO push_outbox ({OUTBOX_COLUMNS}) SELECT advisor, kind, dedupe_key, title,"
        f" body, data, due_at, deadline_at, 'pending', 0, due_at, {param('timestamptz')}"
        f" FROM ({source}) AS src WHERE true ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        now,
        *args,
    )
    return len(made)


async def on_tasks_assigned(tasks: list[TaskAssigned]) -> None:
    """Tasks made or handed over: the urgent kinds reach their advisor at once (or at
    08:00)."""
    chosen = [t for t in tasks if t.urgent]
    if not chosen:
        return
    zones = await advisor_zones([t.assignee for t in chosen])
    now = clock.now()
    await queue(
        [
            Push(
                advisor_id=t.assignee,
                kind="urgent",
                dedupe_key=f"urgent:{t.task_id}:{t.assignee}",
                title="紧急任务",
                body=t.reason or "有一个紧急跟进任务，请尽快处理",
                data={"type": "task", "task_id": str(t.task_id), "kind": t.kind},
                due_at=after_quiet_hours(now, clock.zone(zones[t.assignee])),
            )
            for t in chosen
        ]
    )


async def queue_digests(day: date, at: time = DIGEST_AT, timezones: list[str] | None = None) -> int:
    """The morning digest for ``day`` at ``at`` store time, for every advisor with open
    tasks that day, in one statement per time zone. Returns how many were queued."""
    return await in_write_transaction(partial(_queue_digests, day, at, timezones))


async def _queue_digests(day: date, at: time, timezones: list[str] | None) -> int:
    if timezones is None:
        timezones = await timezones_in_use()
    made = 0
    now = clock.now()
    for zone in timezones:
        tz = clock.zone(zone)
        # Queued late (by hand, or a scheduler back up at night): never sent at night.
        due = after_quiet_hours(max(datetime.combine(day, at, tzinfo=tz), now), tz)
        ts = param("timestamptz")
        work, work_args = day_work(day, zone)
        rows = await fetch(
            f"INSERT INTO push_outbox ({OUTBOX_COLUMNS}) SELECT c.assignee, 'digest',"
            " 'digest:' || CAST(c.assignee AS TEXT) || ':' || {}, '今日回访',"
            " '今天有 ' || CAST(c.n AS TEXT) || ' 个回访任务' || CASE WHEN c.late > 0"
            " THEN '，' || CAST(c.late AS TEXT) || ' 个已逾期' ELSE '' END,"
            " {} || CAST(c.n AS TEXT) || {} || CAST(c.late AS TEXT) || {},"
            f" {ts}, {ts}, 'pending', 0, {ts}, {ts} FROM {work} c"
            " WHERE true ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            day.isoformat(),
            # The data fields, as a JSON object of strings (braces cannot be in the SQL).
            f'{{"type": "digest", "date": "{day.isoformat()}", "tasks": "',
            '", "overdue": "',
            '"}',
            due,
            due + DEADLINE["digest"],
            due,
            now,
            *work_args,
        )
        made += len(rows)
    return made


async def on_month_closed(closed: list[MonthClosed]) -> None:
    for event in closed:
        await _queue_ranks(event.month, event.previous_month)


async def _queue_ranks(month: str, previous_month: str) -> None:
    """Each active advisor with a score line for the month hears their national rank,
    and how it moved against the month before: in the close's own transaction, one
    statement for the whole chain."""
    now = clock.now()
    zones = await timezones_in_use()
    due = {z: after_quiet_hours(now, clock.zone(z)) for z in zones}
    source, args = rows_source(
        [("timezone", "text"), ("due_at", "timestamptz"), ("deadline_at", "timestamptz")],
        [(z, due[z], due[z] + DEADLINE["rank"]) for z in zones],
    )
    label = f"{int(month[5:7])}月"
    text = param("text")
    now_ranked, now_args = national_ranks(month)
    then_ranked, then_args = national_ranks(previous_month)
    await fetch(
        f"WITH now_ranked AS {now_ranked}, then_ranked AS {then_ranked}"
        f" INSERT INTO push_outbox ({OUTBOX_COLUMNS})"
        " SELECT n.advisor, 'rank', 'rank:' || {} || ':' || CAST(n.advisor AS TEXT), {},"
        " {} || '全国排名第 ' || CAST(n.r AS TEXT) || ' 名' || CASE WHEN t.r IS NULL THEN ''"
        " WHEN t.r > n.r THEN '，上升 ' || CAST(t.r - n.r AS TEXT) || ' 名'"
        " WHEN t.r < n.r THEN '，下降 ' || CAST(n.r - t.r AS TEXT) || ' 名'"
        " ELSE '，与上月持平' END,"
        f" {text} || {text} || {text} || CAST(n.r AS TEXT) || {text},"
        f" z.due_at, z.deadline_at, 'pending', 0, z.due_at, {param('timestamptz')}"
        " FROM now_ranked n LEFT JOIN then_ranked t ON t.advisor = n.advisor"
        f" JOIN {ADVISORS} a ON a.id = n.advisor"
        f" JOIN ({source}) AS z ON z.timezone = a.timezone WHERE a.active"
        " ON CONFLICT (dedupe_key) DO NOTHING",
        *now_args,
        *then_args,
        month,
        f"{label}排名已出",
        label,
        '{"type": "rank", "period": "',
        month,
        '", "rank": "',
        '"}',
        now,
        *args,
    )
