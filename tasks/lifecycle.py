"""How a task comes to be and moves on: made from rows (unique by dedupe key,
never for a do-not-contact member), dealt out to a store's advisors, moved to a
final status, and every step kept in the task's history."""

from __future__ import annotations

from collections import Counter as Counter_
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from core import clock, metrics
from core.db import after_commit, fetch, in_list, param, rows_source
from core.events import bus
from members.queries import ADVISORS, MEMBERS
from tasks.events import TaskAssigned
from tasks.playbook import load_rules

TASK_INSERT = (
    "INSERT INTO task (kind, member, store, assignee, topic, reason, script, anchor_on,"
    " due_on, expires_on, priority, status, cause, dedupe_key, created_at, updated_at)"
)
TASK_ROW = [
    ("kind", "text"),
    ("member", "bigint"),
    ("topic", "text"),
    ("reason", "text"),
    ("script", "text"),
    ("anchor_on", "date"),
    ("due_on", "date"),
    ("expires_on", "date"),
    ("priority", "int"),
    ("cause", "text"),
    ("dedupe_key", "text"),
]


@dataclass(slots=True)
class RunReport:
    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    expired: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Superseded at purchase time during the day the run is for: reported, not done, by it.
    superseded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def count(self, bucket: dict[str, int], rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            bucket[row["kind"]] += 1

    def add(self, other: RunReport) -> None:
        for mine, theirs in (
            (self.created, other.created),
            (self.expired, other.expired),
            (self.superseded, other.superseded),
        ):
            for kind, n in theirs.items():
                mine[kind] += n
        for step, seconds in other.seconds.items():
            self.seconds[step] += seconds


def counted(counter: Counter, kind: str, n: int) -> int:
    """Count ``n`` tasks of ``kind`` in ``counter`` once the transaction commits."""
    if n:
        after_commit(lambda: metrics.count(counter, kind, n))
    return n


async def insert_task_rows(rows: list[tuple[Any, ...]], report: RunReport) -> None:
    """Tasks made in Python (from a batch of events): one statement for all of them.
    Do-not-contact members get none; a dedupe key already taken adds nothing. The
    owning advisor takes each if still active at the home store; the rest are dealt
    out at once."""
    if not rows:
        return
    source, args = rows_source(TASK_ROW, rows)
    now = clock.now()
    created = await fetch(
        f"{TASK_INSERT} SELECT t.kind, t.member, m.home_store, m.owner, t.topic,"
        " t.reason, t.script, t.anchor_on, t.due_on, t.expires_on, t.priority, 'open', t.cause,"
        f" t.dedupe_key, {param('timestamptz')}, {param('timestamptz')}"
        f" FROM ({source}) AS t JOIN {MEMBERS} m ON m.id = t.member"
        " WHERE NOT m.do_not_contact ON CONFLICT (dedupe_key) DO NOTHING"
        " RETURNING id, kind, store, assignee, reason",
        now,
        now,
        *args,
    )
    for kind, n in Counter_(row["kind"] for row in created).items():
        report.created[kind] += counted(metrics.TASKS_MADE, kind, n)
    await announce_assigned(created)
    orphans = {row["store"] for row in created if row["assignee"] is None}
    if orphans:
        await assign_unassigned(sorted(orphans))


async def announce_assigned(rows: Sequence[dict[str, Any]]) -> None:
    """Tell others of tasks made for or handed to an advisor (``id``, ``kind``,
    ``assignee``, ``reason``)."""
    given = [r for r in rows if r.get("assignee") is not None]
    if not given:
        return
    urgent = {kind for kind, rule in (await load_rules()).items() if rule.urgent}
    await bus.publish(
        [
            TaskAssigned(
                task_id=int(r["id"]),
                kind=r["kind"],
                assignee=int(r["assignee"]),
                reason=r.get("reason") or "",
                urgent=r["kind"] in urgent,
            )
            for r in given
        ]
    )


async def transition(
    condition: str, args: Sequence[Any], to_status: str, reason: str
) -> list[dict[str, Any]]:
    """Move open tasks matching ``condition`` (SQL over ``task``) to a final status
    and write their history; returns the moved tasks' id and kind."""
    now = clock.now()
    moved: list[dict[str, Any]] = await fetch(
        "UPDATE task SET status = {}, status_reason = {}, updated_at = {}"
        f" WHERE status = 'open' AND ({condition}) RETURNING id, kind, assignee",
        to_status,
        reason,
        now,
        *args,
    )
    await write_history(moved, "open", to_status, reason, now)
    return moved


async def write_history(
    tasks: Sequence[dict[str, Any]], from_status: str, to_status: str, reason: str, at: Any
) -> None:
    if not tasks:
        return
    source, args = rows_source(
        [("task", "bigint"), ("assignee", "int")], [(t["id"], t["assignee"]) for t in tasks]
    )
    await fetch(
        "INSERT INTO task_event (task, from_status, to_status, reason, assignee, at)"
        f" SELECT task, {param('text')}, {param('text')}, {param('text')}, assignee,"
        f" {param('timestamptz')} FROM ({source}) AS s",
        from_status,
        to_status,
        reason,
        at,
        *args,
    )


async def assign_unassigned(store_ids: Sequence[int]) -> int:
    """Deal each store's unassigned open tasks out to its active advisors, the least
    loaded first, round-robin, in one statement."""
    if not store_ids:
        return 0
    stores, store_args = in_list(store_ids, "int")
    now = clock.now()
    assigned = await fetch(
        # Loads through the (assignee, status) index, advisor by advisor: a store's
        # open tasks are never scanned as a whole.
        "WITH loads AS ("
        " SELECT a.id, a.store, ROW_NUMBER() OVER (PARTITION BY a.store"
        " ORDER BY (SELECT COUNT(*) FROM task o WHERE o.assignee = a.id AND o.status = 'open'),"
        " a.id) AS rn, COUNT(*) OVER (PARTITION BY a.store) AS cnt"
        f" FROM {ADVISORS} a WHERE a.active AND a.store {stores}),"
        " orphans AS (SELECT t.id, t.store, ROW_NUMBER() OVER (PARTITION BY t.store"
        " ORDER BY t.due_on, t.id) AS rn FROM task t"
        f" WHERE t.status = 'open' AND t.assignee IS NULL AND t.store {stores})"
        " UPDATE task SET assignee = x.advisor, updated_at = {} FROM ("
        " SELECT o.id, l.id AS advisor FROM orphans o JOIN loads l"
        " ON l.store = o.store AND l.rn = ((o.rn - 1) % l.cnt) + 1) AS x"
        " WHERE task.id = x.id RETURNING task.id, task.assignee, task.kind, task.reason",
        *store_args,
        *store_args,
        now,
    )
    await write_history(assigned, "open", "open", "assigned", now)
    await announce_assigned(assigned)
    return len(assigned)
