"""An advisor who leaves (or moves store) hands their open tasks on: each follows
its member to the member's new owning advisor where that advisor is active at the
member's store; the rest are dealt out to the store's least loaded advisors."""

from __future__ import annotations

from core import clock
from core.db import fetch
from members.events import AdvisorLeft
from members.queries import MEMBERS
from tasks.lifecycle import announce_assigned, assign_unassigned, write_history


async def on_advisors_left(left: list[AdvisorLeft]) -> None:
    for event in left:
        await _hand_over_tasks(event)


async def _hand_over_tasks(event: AdvisorLeft) -> None:
    stale = "task.assignee = {} AND (NOT {} OR task.store <> {})"
    now = clock.now()
    moved = await fetch(
        f"UPDATE task SET assignee = (SELECT m.owner FROM {MEMBERS} m WHERE m.id = task.member),"
        f" updated_at = {{}} WHERE status = 'open' AND {stale}"
        " RETURNING id, store, assignee, kind, reason",
        now,
        event.advisor_id,
        event.active,
        event.store_id,
    )
    await write_history(moved, "open", "open", "reassigned", now)
    await announce_assigned(moved)
    await assign_unassigned(sorted({r["store"] for r in moved if r["assignee"] is None}))
