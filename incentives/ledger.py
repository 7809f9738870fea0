"""The score ledger: facts appended in the transaction of what caused them, and the
league-table totals kept beside them.

- ``new_member``: a member who joined, credited to the recruiting advisor;
- ``points``: points a purchase earned (a promotion's extra included), credited to
  the receipt's advisor (else the member's owning advisor); redemptions never take
  them back, a return does (a negative fact on the purchase's day);
- ``task_done`` / ``task_converted``: reconciled from the task itself whenever the
  tasks domain says a task settled, so a task undone by a do-not-contact request
  gets a reversing row and a task done again after that gets a new one.

Every fact names its source (``source_key`` is unique), so a replayed event adds
nothing. Facts count on their store-local day; for pay they are booked in their own
month, or in the first open month after it when that month was closed before the
fact arrived (an adjustment on the next statement, never an edit of a closed one).

Writers of facts share the ledger lock (``incentives.rules.hold_ledger``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from core import clock
from core.db import defer, fetch, in_list, rows_source
from core.periods import keys_of, month_key, week_key
from incentives.rules import KINDS, Weights, booking, closed_months, hold_ledger, load_weights
from members.events import MemberJoined, PurchaseRecorded, PurchaseReturned
from tasks.events import TaskSettled
from tasks.queries import settled_states

LEDGER = "score_ledger"  # the key its facts are queued under until commit


@dataclass(frozen=True, slots=True)
class Fact:
    advisor_id: int
    store_id: int
    kind: str
    amount: int
    counts_on: date
    source_key: str
    member_id: int | None = None
    purchase_id: int | None = None
    task_id: int | None = None


async def append_facts(facts: list[Fact]) -> None:
    """Append facts in the caller's transaction, once, just before it commits (with
    every other fact of that transaction); facts whose source is already in the
    ledger are skipped."""
    if facts and not defer(LEDGER, facts, _write):
        await _write(list(facts))


async def credit_tasks(settled: list[TaskSettled]) -> None:
    """Tasks whose done or converted state may have changed: their facts are
    reconciled when the transaction is about to commit, against its final state."""
    if settled and not defer(LEDGER, settled, _write):
        await _write(list(settled))


async def _write(queued: list[Fact | TaskSettled]) -> int:
    """Write a transaction's facts: the queued ones and its tasks' reconciliations, in
    one statement, and add them to the totals. Returns how many were new."""
    facts = [f for f in queued if isinstance(f, Fact)]
    settled = sorted({f.task_id for f in queued if isinstance(f, TaskSettled)})
    if settled:
        facts += await _task_facts(settled)
    if not facts:
        return 0
    await hold_ledger()
    closed = await closed_months(min(month_key(f.counts_on) for f in facts))
    weights = await load_weights()
    source, args = rows_source(
        [
            ("advisor", "int"),
            ("store", "int"),
            ("kind", "text"),
            ("amount", "int"),
            ("counts_on", "date"),
            ("counts_week", "text"),
            ("counts_month", "text"),
            ("booked_month", "text"),
            ("source_key", "text"),
            ("member", "bigint"),
            ("purchase", "bigint"),
            ("task", "bigint"),
        ],
        [
            (
                f.advisor_id,
                f.store_id,
                f.kind,
                f.amount,
                f.counts_on,
                week_key(f.counts_on),
                month_key(f.counts_on),
                booking(month_key(f.counts_on), closed),
                f.source_key,
                f.member_id,
                f.purchase_id,
                f.task_id,
            )
            for f in sorted(facts, key=lambda f: f.source_key)
        ],
    )
    inserted = await fetch(
        "INSERT INTO score_fact (advisor, store, kind, amount, counts_on, counts_week,"
        " counts_month, booked_month, source_key, member, purchase, task, recorded_at)"
        " SELECT advisor, store, kind, amount, counts_on, counts_week, counts_month,"
        f" booked_month, source_key, member, purchase, task, {{}} FROM ({source}) AS src"
        " WHERE true ON CONFLICT (source_key) DO NOTHING RETURNING source_key",
        clock.now(),
        *args,
    )
    new_keys = {row["source_key"] for row in inserted}
    made = [f for f in facts if f.source_key in new_keys]
    await _add_to_totals("advisor_score", "advisor", made, lambda f: f.advisor_id, weights)
    await _add_to_totals("store_score", "store", made, lambda f: f.store_id, weights)
    return len(made)


async def _add_to_totals(
    table: str, subject: str, facts: list[Fact], subject_of: Any, weights: Weights
) -> None:
    if not facts:
        return
    totals: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for f in facts:
        column = KINDS.index(f.kind)
        for period in keys_of(f.counts_on):
            row = totals[(period, subject_of(f))]
            row[column] += f.amount
            row[4] += f.amount * weights.of(f.kind)
    source, args = rows_source(
        [
            ("period", "text"),
            ("subject", "int"),
            ("new_members", "int"),
            ("points", "bigint"),
            ("tasks_done", "int"),
            ("tasks_converted", "int"),
            ("score", "bigint"),
        ],
        [(period, who, *row) for (period, who), row in sorted(totals.items())],
    )
    # Rows go in key order so that two writers meeting on the same totals queue
    # rather than deadlock.
    await fetch(
        f"INSERT INTO {table} (period, {subject}, new_members, points, tasks_done,"
        " tasks_converted, score) SELECT period, subject, new_members, points, tasks_done,"
        f" tasks_converted, score FROM ({source}) AS src WHERE true ORDER BY period, subject"
        f" ON CONFLICT (period, {subject}) DO UPDATE SET"
        f" new_members = {table}.new_members + excluded.new_members,"
        f" points = {table}.points + excluded.points,"
        f" tasks_done = {table}.tasks_done + excluded.tasks_done,"
        f" tasks_converted = {table}.tasks_converted + excluded.tasks_converted,"
        f" score = {table}.score + excluded.score",
        *args,
    )


# --- the listeners -----------------------------------------------------------


async def credit_new_members(joined: list[MemberJoined]) -> None:
    await append_facts(
        [
            Fact(
                advisor_id=j.recruited_by,
                store_id=j.store_id,
                kind="new_member",
                amount=1,
                counts_on=j.joined_on,
                source_key=f"new_member:{j.member_id}",
                member_id=j.member_id,
            )
            for j in joined
            if j.recruited_by is not None
        ]
    )


async def credit_purchases(recorded: list[PurchaseRecorded]) -> None:
    await append_facts(
        [
            Fact(
                advisor_id=p.advisor_id,
                store_id=p.store_id,
                kind="points",
                amount=p.points_earned,
                counts_on=p.purchased_on,
                source_key=f"points:{p.purchase_id}",
                member_id=p.member_id,
                purchase_id=p.purchase_id,
            )
            for p in recorded
            if p.advisor_id is not None and p.points_earned > 0
        ]
    )


async def reverse_returned_points(returned: list[PurchaseReturned]) -> None:
    """A return takes back the receipt's points from the advisor they were credited
    to, on the purchase's day: in its month's tables, or as an adjustment in the open
    month when that month is closed (the closed statement stays as it was)."""
    await append_facts(
        [
            Fact(
                advisor_id=r.advisor_id,
                store_id=r.store_id,
                kind="points",
                amount=-r.points_owed,
                counts_on=r.purchased_on,
                source_key=f"return:{r.return_pk}",
                member_id=r.member_id,
                purchase_id=r.purchase_id,
            )
            for r in returned
            if r.advisor_id is not None and r.points_owed > 0
        ]
    )


async def _task_facts(task_ids: list[int]) -> list[Fact]:
    """What brings the ledger in line with the tasks now: a done task counts one
    ``task_done`` for its advisor on the day of the call, a converted one a
    ``task_converted`` on the day of the purchase; whatever the ledger holds beyond
    that is reversed on the day it was counted on."""
    cond, args = in_list(task_ids, "bigint")
    tasks = await settled_states(task_ids)
    wanted: dict[tuple[int, str, int, int, date], int] = {}
    members: dict[int, int] = {}
    for t in tasks:
        members[t["id"]] = t["member"]
        if t["status"] != "done" or t["assignee"] is None or t["done_on"] is None:
            continue
        wanted[(t["id"], "task_done", t["assignee"], t["store"], t["done_on"])] = 1
        if t["converted_on"] is not None:
            wanted[(t["id"], "task_converted", t["assignee"], t["store"], t["converted_on"])] = 1
    held: dict[tuple[int, str, int, int, date], int] = {}
    rows_so_far: dict[tuple[int, str], int] = defaultdict(int)
    for row in await fetch(
        "SELECT task, kind, advisor, store, counts_on, SUM(amount) AS net, COUNT(*) AS n"
        f" FROM score_fact WHERE task {cond} GROUP BY task, kind, advisor, store, counts_on",
        *args,
    ):
        key = (
            row["task"],
            row["kind"],
            row["advisor"],
            row["store"],
            clock.as_date(row["counts_on"]),
        )
        held[key] = int(row["net"])
        rows_so_far[(row["task"], row["kind"])] += int(row["n"])
    facts = []
    for key in sorted(set(wanted) | set(held)):
        change = wanted.get(key, 0) - held.get(key, 0)
        if change == 0:
            continue
        task_id, kind, advisor_id, store_id, counts_on = key
        rows_so_far[(task_id, kind)] += 1
        facts.append(
            Fact(
                advisor_id=advisor_id,
                store_id=store_id,
                kind=kind,
                amount=change,
                counts_on=counts_on,
                source_key=f"{kind}:{task_id}:{rows_so_far[(task_id, kind)]}",
                member_id=members.get(task_id),
                task_id=task_id,
            )
        )
    return facts
