"""Working the list: outcomes recorded from phones that go offline, snoozes, and
conversions — a reached member who buys soon after.

Outcomes are judged by when the call happened (the phone's ``recorded_at``), not by
when they reach the server, so a phone that replays a day's queue in any order ends
where it would have if every outcome had been sent live.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from members import clock
from members.db import LostRace, fetch, in_list, in_write_transaction, is_postgres, rows_source
from members.errors import Conflict, FieldError, InvalidInput, NotFound
from members.events import PurchaseRecorded
from members.services import FUTURE_TOLERANCE
from tasks import events
from tasks.services import RunReport, insert_task_rows, load_rules, write_history

Channel = Literal["phone", "wechat", "sms", "visit"]
Result = Literal[
    "reached",
    "no_answer",
    "wrong_number",
    "declined",
    "will_buy",
    "purchased",
    "delivery_requested",
    "do_not_contact",
]
REACHED: tuple[str, ...] = ("reached", "will_buy", "purchased", "delivery_requested")


class Conversion:
    """How long after a reached call a purchase still counts as its conversion
    (``TIANTIAN_CONVERSION_DAYS``, set at wiring)."""

    window = timedelta(days=7)


MAX_CALLBACK_AHEAD = timedelta(days=90)
CLOCK_GRACE = timedelta(days=1)


class OutcomeIn(msgspec.Struct):
    client_outcome_id: Annotated[
        str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")
    ]
    channel: Channel
    result: Result
    recorded_at: datetime
    note: Annotated[str, Meta(max_length=500, pattern=r"^[^\x00\x7f]*$")] = ""
    next_contact_on: date | None = None


class SnoozeIn(msgspec.Struct):
    until: date


class OutcomeOut(msgspec.Struct, omit_defaults=True):
    task_id: int
    status: str
    applied: bool
    callback_task_id: int | None = None
    detail: str | None = None


def _digest(task_id: int, data: OutcomeIn) -> str:
    body = msgspec.json.encode(
        (task_id, data.channel, data.result, data.note, data.next_contact_on, data.recorded_at)
    )
    return hashlib.sha256(body).hexdigest()


async def record_outcome(
    advisor_id: int, timezone: str, task_id: int, data: OutcomeIn
) -> tuple[bool, OutcomeOut]:
    """Record what happened on a call. Returns (first time, answer)."""
    tz = clock.zone(timezone)
    try:
        recorded_at = clock.as_instant(data.recorded_at, tz)
    except ValueError as exc:
        raise InvalidInput.on("recorded_at", str(exc)) from None
    if recorded_at > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput.on("recorded_at", "is in the future")
    try:
        recorded_on = clock.local_date(recorded_at, tz)
    except ValueError as exc:
        raise InvalidInput.on("recorded_at", str(exc)) from None
    callback_on = data.next_contact_on
    if callback_on is not None and not (
        recorded_on <= callback_on <= recorded_on + MAX_CALLBACK_AHEAD
    ):
        raise InvalidInput.on("next_contact_on", "from the day of the call to 90 days after it")
    digest = _digest(task_id, data)

    async def replayed() -> OutcomeOut | None:
        earlier = await fetch(
            "SELECT task, request_hash, task_status, applied, callback_task FROM outcome"
            " WHERE advisor = {} AND client_outcome_id = {}",
            advisor_id,
            data.client_outcome_id,
        )
        if not earlier:
            return None
        row = earlier[0]
        if row["request_hash"] != digest:
            raise Conflict(
                f"client_outcome_id {data.client_outcome_id} was used for another outcome",
                [FieldError("client_outcome_id", "already used for another outcome")],
            )
        return OutcomeOut(
            task_id=row["task"],
            status=row["task_status"],
            applied=bool(row["applied"]),
            callback_task_id=row["callback_task"],
        )

    async def work() -> tuple[bool, OutcomeOut]:
        answer = await replayed()
        if answer is not None:
            return False, answer
        lock = " FOR UPDATE" if is_postgres() else ""
        tasks = await fetch(
            "SELECT id, member, store, status, status_reason, expires_on, updated_at, done_at,"
            f" created_at FROM task WHERE id = {{}} AND assignee = {{}}{lock}",
            task_id,
            advisor_id,
        )
        if not tasks:
            raise NotFound(f"no task {task_id} of yours")
        # The same outcome sent twice at once: the second waited on the task's lock
        # and now finds the first one's row.
        answer = await replayed()
        if answer is not None:
            return False, answer
        task = tasks[0]
        # A phone whose clock was reset must not rewrite history: a call cannot
        # come before its task existed (a day's grace for clock drift).
        if recorded_at < task["created_at"] - CLOCK_GRACE:
            raise InvalidInput.on("recorded_at", "is before the task was made")
        asked = await fetch(
            "SELECT MIN(o.recorded_at) AS at FROM outcome o JOIN task t ON t.id = o.task"
            " WHERE t.member = {} AND o.result = 'do_not_contact'",
            task["member"],
        )
        asked_at = asked[0]["at"] if asked else None
        if isinstance(asked_at, str):  # an aggregate: SQLite gives the stored text
            asked_at = datetime.fromisoformat(asked_at)
        detail: str | None
        if asked_at is not None and recorded_at > asked_at:
            applied, detail = False, "the member had asked not to be contacted before this call"
        elif task["status"] == "cancelled" and task["status_reason"] == "do_not_contact":
            # Cancelled by a request made after this call (else the branch above):
            # had the call arrived first it would have completed the task.
            applied, detail = True, None
        else:
            applied, detail = _applies(task, recorded_at, tz)
        now = clock.now()
        status = task["status"]
        if applied:
            status = "done"
            await fetch(
                "UPDATE task SET status = 'done', status_reason = {}, result = {}, done_at = {},"
                " updated_at = {} WHERE id = {}",
                data.result,
                data.result,
                recorded_at,
                now,
                task_id,
            )
            await write_history(
                [{"id": task_id, "assignee": advisor_id}], task["status"], "done", data.result, now
            )
            if data.result in REACHED:
                await _convert_late(task_id, task["member"], recorded_at)
        callback_id = None
        settled = [task_id] if applied else []
        if data.result == "do_not_contact":
            settled += await _do_not_contact(task["member"], recorded_at, tz)
        else:
            if data.result == "wrong_number":
                await fetch(
                    "UPDATE member SET wrong_number_at = COALESCE(wrong_number_at, {})"
                    " WHERE id = {}",
                    recorded_at,
                    task["member"],
                )
            if data.result == "delivery_requested":
                # The member's request stands even when the call no longer completes
                # its task; the made task's id is answered as the callback's would be.
                callback_id = await _made_by_call(
                    task,
                    "delivery",
                    callback_on or recorded_on,
                    clock.today(tz),
                    "会员要求送货上门",
                )
            elif callback_on is not None:
                callback_id = await _made_by_call(
                    task, "callback", callback_on, clock.today(tz), "会员约定回访"
                )
                if callback_id is None:
                    detail = f"no callback: {callback_on} had passed by the time this arrived"
        await events.tasks_settled(settled)
        inserted = await fetch(
            "INSERT INTO outcome (task, advisor, client_outcome_id, channel, result, note,"
            " next_contact_on, recorded_at, received_at, request_hash, applied, task_status,"
            " callback_task) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})"
            " ON CONFLICT (advisor, client_outcome_id) DO NOTHING RETURNING id",
            task_id,
            advisor_id,
            data.client_outcome_id,
            data.channel,
            data.result,
            data.note,
            callback_on,
            recorded_at,
            now,
            digest,
            applied,
            status,
            callback_id,
        )
        if not inserted:
            raise LostRace()
        return True, OutcomeOut(
            task_id=task_id,
            status=status,
            applied=applied,
            callback_task_id=callback_id,
            detail=detail,
        )

    return await in_write_transaction(work)


def _applies(task: dict[str, Any], recorded_at: datetime, tz: Any) -> tuple[bool, str | None]:
    """Whether the call completes the task: it does if the task was open, or if the
    call happened before the task lapsed or was cancelled (a phone offline for a
    while); a call after that is kept but changes nothing."""
    status = task["status"]
    if status == "open":
        return True, None
    if status == "done":
        raise Conflict(
            f"task {task['id']} is already done by another outcome",
            [FieldError("client_outcome_id", "the task already has a different outcome")],
        )
    if status == "expired":
        expires_on = task["expires_on"]
        lapsed_at, _ = clock.day_bounds(
            clock.as_date(expires_on) + timedelta(days=1),
            tz,
        )
        if recorded_at < lapsed_at:
            return True, None
        return (
            False,
            f"the task expired on {expires_on}: the call is recorded, the task stays expired",
        )
    cancelled_at = task["updated_at"]
    if recorded_at < cancelled_at:
        return True, None
    return False, (
        f"the task was cancelled ({task['status_reason']}): the call is recorded,"
        " the task stays cancelled"
    )


async def _do_not_contact(member_id: int, recorded_at: datetime, tz: Any) -> list[int]:
    """The member asked not to be contacted: flag them and cancel every task that was
    still open when they asked — open now, expired since, or done by a call made
    after they asked (an offline queue may bring those first)."""
    await fetch("UPDATE member SET do_not_contact = true WHERE id = {}", member_id)
    moved = await fetch(
        "UPDATE task SET status = 'cancelled', status_reason = 'do_not_contact', result = NULL,"
        " done_at = NULL, converted_purchase = NULL, converted_fen = NULL, updated_at = {}"
        " WHERE member = {} AND (status = 'open'"
        " OR (status = 'done' AND done_at > {}) OR (status = 'expired' AND expires_on >= {}))"
        " RETURNING id, kind, assignee",
        recorded_at,
        member_id,
        recorded_at,
        clock.local_date(recorded_at, tz),
    )
    if moved:
        cond, args = in_list([m["id"] for m in moved], "bigint")
        await fetch(
            f"UPDATE outcome SET applied = false, task_status = 'cancelled' WHERE task {cond}",
            *args,
        )
    await write_history(moved, "open", "cancelled", "do_not_contact", recorded_at)
    return [m["id"] for m in moved]


async def _made_by_call(
    task: dict[str, Any], kind: str, on: date, today: date, reason: str
) -> int | None:
    """A task the member asked for on the call (a callback, a delivery), due ``on``."""
    rule = (await load_rules()).get(kind)
    if rule is None or not rule.enabled:
        return None
    due, expires = rule.window(on)
    if expires < today:
        return None  # asked for a day already past by the time the phone synced
    key = f"{kind}:{task['id']}:{on}"
    await insert_task_rows(
        [
            (
                kind,
                task["member"],
                "",
                reason,
                rule.script,
                on,
                due,
                expires,
                rule.priority,
                f"task:{task['id']}",
                key,
            )
        ],
        RunReport(),
    )
    rows = await fetch("SELECT id FROM task WHERE dedupe_key = {}", key)
    return int(rows[0]["id"]) if rows else None


async def snooze(advisor_id: int, timezone: str, task_id: int, until: date) -> dict[str, Any]:
    async def work() -> dict[str, Any]:
        rows = await fetch(
            "SELECT id, status, due_on, expires_on FROM task WHERE id = {} AND assignee = {}",
            task_id,
            advisor_id,
        )
        if not rows:
            raise NotFound(f"no task {task_id} of yours")
        task = rows[0]
        if task["status"] != "open":
            raise Conflict(f"task {task_id} is {task['status']}, not open")
        today = clock.today(clock.zone(timezone))
        if until < today:
            raise InvalidInput.on("until", "is in the past")
        if until > clock.as_date(task["expires_on"]):
            raise InvalidInput.on("until", f"is after the task expires on {task['expires_on']}")
        now = clock.now()
        await fetch(
            "UPDATE task SET due_on = {}, updated_at = {} WHERE id = {}", until, now, task_id
        )
        await write_history(
            [{"id": task_id, "assignee": advisor_id}], "open", "open", "snoozed", now
        )
        return {"task_id": task_id, "status": "open", "due_date": until.isoformat()}

    result: dict[str, Any] = await in_write_transaction(work)
    return result


async def convert(recorded: list[PurchaseRecorded]) -> None:
    """In the purchase's transaction: a purchase within 7 days after a task was done
    with a reached-type result converts that task (the latest such), once; a task
    converts once and a purchase converts at most one task."""
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
    totals = await _purchase_totals([p.purchase_id for p in recorded])
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
                pairs.append((c["id"], p.purchase_id, totals[p.purchase_id]))
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
    await events.tasks_settled([row["id"] for row in converted])


async def _convert_late(task_id: int, member_id: int, done_at: datetime) -> None:
    """A reached call that syncs after the member has already bought: the first
    purchase in its window that converted nothing converts it, as it would have
    had the call been sent live."""
    window = Conversion.window
    found = await fetch(
        "SELECT p.id, p.total_fen FROM purchase p WHERE p.member = {}"
        " AND p.purchased_at >= {} AND p.purchased_at < {}"
        " AND NOT EXISTS (SELECT 1 FROM task t WHERE t.converted_purchase = p.id)"
        " ORDER BY p.purchased_at, p.id LIMIT 1",
        member_id,
        done_at,
        done_at + window,
    )
    if found:
        await fetch(
            "UPDATE task SET converted_purchase = {}, converted_fen = {}"
            " WHERE id = {} AND converted_purchase IS NULL",
            found[0]["id"],
            found[0]["total_fen"],
            task_id,
        )


async def _purchase_totals(purchase_ids: list[int]) -> dict[int, int]:
    cond, args = in_list(purchase_ids, "bigint")
    rows = await fetch(f"SELECT id, total_fen FROM purchase WHERE id {cond}", *args)
    return {r["id"]: int(r["total_fen"]) for r in rows}
