"""Delivery tasks for O2O orders: an order routed to a store is an urgent
``delivery`` task (and, through TaskAssigned, a push) for its advisors: the member's
own advisor when the order is back at the home store, else the store's least loaded
advisor, as other tasks are dealt out. It is cancelled when the order moves away,
handed to whoever accepts the order, and done when the order is delivered."""

from __future__ import annotations

from datetime import timedelta

from core import clock
from core.db import fetch, in_list, param, rows_source
from core.events import bus
from members.queries import ADVISORS, MEMBERS
from orders.events import OrderAccepted, OrderDelivered, OrderMovedAway, OrderRouted
from tasks.events import TaskAssigned
from tasks.lifecycle import TASK_INSERT, transition, write_history
from tasks.playbook import load_rules

KIND = "delivery"
DEFAULT_PRIORITY = 1  # the top of the phone's list (紧急)

# The store's active advisor with the fewest open tasks (through the (assignee,
# status) index, advisor by advisor), as ``lifecycle.assign_unassigned`` deals them.
LEAST_LOADED = (
    f"(SELECT a.id FROM {ADVISORS} a WHERE a.store = t.store AND a.active"
    " ORDER BY (SELECT COUNT(*) FROM task o WHERE o.assignee = a.id AND o.status = 'open'),"
    " a.id LIMIT 1)"
)


def task_key(order_pk: int, store_id: int) -> str:
    """One task per order and store: a store never gets the same order twice."""
    return f"o2o:{order_pk}:{store_id}"


async def on_orders_routed(routed: list[OrderRouted]) -> None:
    """Made even when HQ switched the playbook's delivery kind off, and pushed at once
    whether or not the kind is marked urgent: an order waiting on a store is not a
    follow-up the store may skip or read tomorrow. One statement, assignee chosen."""
    if not routed:
        return
    rule = (await load_rules()).get(KIND)
    script = rule.script if rule else ""
    priority = min(rule.priority, DEFAULT_PRIORITY) if rule else DEFAULT_PRIORITY
    keep_days = max(1, rule.expire_offset_days) if rule else 1
    source, args = rows_source(
        [
            ("member", "bigint"),
            ("store", "int"),
            ("home", "boolean"),
            ("reason", "text"),
            ("day", "date"),
            ("expires", "date"),
            ("cause", "text"),
            ("dedupe_key", "text"),
        ],
        [
            (
                r.member_id,
                r.store_id,
                r.home_store,
                r.reason,
                r.day,
                r.day + timedelta(days=keep_days),
                f"o2o:{r.order_pk}",
                task_key(r.order_pk, r.store_id),
            )
            for r in routed
        ],
    )
    now = clock.now()
    made = await fetch(
        f"{TASK_INSERT} SELECT {param('text')}, t.member, t.store,"
        f" COALESCE(CASE WHEN t.home AND m.home_store = t.store THEN m.owner END, {LEAST_LOADED}),"
        f" 'o2o', t.reason, {param('text')}, t.day, t.day, t.expires, {param('int')}, 'open',"
        f" t.cause, t.dedupe_key, {param('timestamptz')}, {param('timestamptz')}"
        f" FROM ({source}) AS t JOIN {MEMBERS} m ON m.id = t.member"
        " WHERE true ON CONFLICT (dedupe_key) DO NOTHING"
        " RETURNING id, kind, store, assignee, reason",
        KIND,
        script,
        priority,
        now,
        now,
        *args,
    )
    await bus.publish(
        [
            TaskAssigned(int(r["id"]), KIND, int(r["assignee"]), r["reason"], urgent=True)
            for r in made
            if r["assignee"] is not None
        ]
    )


async def on_orders_moved_away(moved: list[OrderMovedAway]) -> None:
    for m in moved:
        key = task_key(m.order_pk, m.store_id)
        await transition("dedupe_key = {}", [key], "cancelled", "order_moved")


async def on_orders_accepted(accepted: list[OrderAccepted]) -> None:
    """The advisor who accepted the order delivers it: the task is theirs now."""
    now = clock.now()
    for a in accepted:
        handed = await fetch(
            "UPDATE task SET assignee = {}, updated_at = {} WHERE dedupe_key = {}"
            " AND status = 'open' AND (assignee IS NULL OR assignee <> {})"
            " RETURNING id, kind, assignee, reason",
            a.advisor_id,
            now,
            task_key(a.order_pk, a.store_id),
            a.advisor_id,
        )
        # Recorded in the task's history; no push: the advisor took it themselves.
        await write_history(handed, "open", "open", "assigned", now)


async def on_orders_delivered(delivered: list[OrderDelivered]) -> None:
    for d in delivered:
        key = task_key(d.order_pk, d.store_id)
        await transition("dedupe_key = {}", [key], "done", "delivered")


async def orders_of_tasks(task_ids: list[int]) -> dict[int, int]:
    """The O2O order behind each of these tasks that is an order's delivery (others,
    such as a delivery a member asked for on a call, are left out): task id → order key."""
    if not task_ids:
        return {}
    cond, args = in_list(task_ids, "bigint")
    rows = await fetch(
        f"SELECT id, cause FROM task WHERE id {cond} AND kind = {{}} AND cause LIKE 'o2o:%'",
        *args,
        KIND,
    )
    return {int(r["id"]): int(str(r["cause"]).split(":", 1)[1]) for r in rows}
