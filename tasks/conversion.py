"""Conversion: a purchase by the member within the window after a task was done with
a reached-type result marks that task converted, credited to its advisor. A task
converts once and a purchase converts at most one task."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.db import fetch, in_list, rows_source
from core.events import bus
from members.events import PurchaseRecorded
from members.queries import purchases_between
from tasks.events import TaskSettled

REACHED: tuple[str, ...] = ("reached", "will_buy", "purchased", "delivery_requested")


class Conversion:
    """How long after a reached call a purchase still counts as its conversion
    (``TIANTIAN_CONVERSION_DAYS``, set at wiring)."""

    window = timedelta(days=7)


async def settled(task_ids: list[int]) -> None:
    await bus.publish([TaskSettled(t) for t in sorted(set(task_ids))])


async def convert(recorded: list[PurchaseRecorded]) -> None:
    """In the purchase's transaction: each purchase converts the latest task of its
    member done with a reached-type result within the window before it."""
    members = sorted({p.member_id for p in recorded})
    cond, args = in_list(members, "bigint")
    reached, reached_args = in_list(list(REACHED), "text")
    window = Conversion.window
    earliest = min(p.purchased_at for p in recorded) - window
    candidates = await fetch(
        "SELECT id, member, done_at FROM task WHERE status = 'done'"
        f" AND converted_purchase IS NULL AND member {cond} AND result {reached}"
        " AND done_at >= {} ORDER BY done_at DESC, id DESC",
        *args,
        *reached_args,
        earliest,
    )
    if not candidates:
        return
    taken: set[int] = set()
    pairs = []
    for p in sorted(recorded, key=lambda p: (p.purchased_at, p.purchase_id)):
        for c in candidates:
            done_at = c["done_at"]
            if (
                c["member"] == p.member_id
                and c["id"] not in taken
                and done_at <= p.purchased_at < done_at + window
            ):
                taken.add(c["id"])
                pairs.append((c["id"], p.purchase_id, p.total_fen))
                break
    if not pairs:
        return
    source, args = rows_source(
        [("task", "bigint"), ("purchase", "bigint"), ("fen", "bigint")], pairs
    )
    converted = await fetch(
        "UPDATE task SET converted_purchase = c.purchase, converted_fen = c.fen"
        f" FROM ({source}) AS c WHERE task.id = c.task AND task.converted_purchase IS NULL"
        " RETURNING task.id",
        *args,
    )
    await settled([row["id"] for row in converted])


async def convert_late(task_id: int, member_id: int, done_at: datetime) -> None:
    """A reached call that syncs after the member has already bought: the first
    purchase in its window that converted nothing converts it, as it would have
    had the call been sent live."""
    bought = await purchases_between(member_id, done_at, done_at + Conversion.window)
    if not bought:
        return
    cond, args = in_list([pid for pid, _ in bought], "bigint")
    taken = {
        int(r["converted_purchase"])
        for r in await fetch(
            f"SELECT converted_purchase FROM task WHERE converted_purchase {cond}", *args
        )
    }
    free = [(pid, fen) for pid, fen in bought if pid not in taken]
    if free:
        await fetch(
            "UPDATE task SET converted_purchase = {}, converted_fen = {}"
            " WHERE id = {} AND converted_purchase IS NULL",
            free[0][0],
            free[0][1],
            task_id,
        )
