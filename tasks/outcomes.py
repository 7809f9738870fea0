"""Working the list: outcomes recorded from phones that go offline, and snoozes.

Outcomes are judged by when the call happened (the phone's ``recorded_at``), not by
when they reach the server, so a phone that replays a day's queue in any order ends
where it would have if every outcome had been sent live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from core import clock, metrics
from core.db import LostRace, fetch, in_list, in_write_transaction, is_postgres
from core.errors import Conflict, FieldError, InvalidInput, NotFound
from core.money import request_hash
from members import contact
from members.stores import FUTURE_TOLERANCE
from tasks.conversion import REACHED, convert_late, settled
from tasks.generation import task_row
from tasks.lifecycle import RunReport, insert_task_rows, write_history
from tasks.playbook import enabled_rule
from tasks.schemas import OutcomeIn, OutcomeOut, SnoozeOut

MAX_CALLBACK_AHEAD = timedelta(days=90)
CLOCK_GRACE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class _Call:
    """An outcome as checked: who, which task, when the call happened and its hash."""

    advisor_id: int
    task_id: int
    data: OutcomeIn
    tz: tzinfo
    recorded_at: datetime
    recorded_on: date
    digest: str


def _checked(advisor_id: int, timezone: str, task_id: int, data: OutcomeIn) -> _Call:
    tz = clock.zone(timezone)
    try:
        recorded_at = clock.as_instant(data.recorded_at, tz)
        recorded_on = clock.local_date(recorded_at, tz)
    except ValueError as exc:
        raise InvalidInput.on("recorded_at", str(exc)) from None
    if recorded_at > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput.on("recorded_at", "is in the future")
    callback_on = data.next_contact_on
    if callback_on is not None and not (
        recorded_on <= callback_on <= recorded_on + MAX_CALLBACK_AHEAD
    ):
        raise InvalidInput.on("next_contact_on", "from the day of the call to 90 days after it")
    digest = request_hash(
        task_id, data.channel, data.result, data.note, data.next_contact_on, data.recorded_at
    )
    return _Call(advisor_id, task_id, data, tz, recorded_at, recorded_on, digest)


async def record_outcome(
    advisor_id: int, timezone: str, task_id: int, data: OutcomeIn
) -> tuple[bool, OutcomeOut]:
    """Record what happened on a call. Returns (first time, answer)."""
    call = _checked(advisor_id, timezone, task_id, data)

    async def work() -> tuple[bool, OutcomeOut]:
        answer = await _replayed(call)
        if answer is not None:
            return False, answer
        task = await _lock_task(call)
        # The same outcome sent twice at once: the second waited on the task's lock
        # and now finds the first one's row.
        answer = await _replayed(call)
        if answer is not None:
            return False, answer
        return True, await _apply(call, task)

    first, answer = await in_write_transaction(work)
    if first:
        metrics.count(metrics.OUTCOMES, data.result)
    return first, answer


async def _replayed(call: _Call) -> OutcomeOut | None:
    earlier = await fetch(
        "SELECT task, request_hash, task_status, applied, callback_task FROM outcome"
        " WHERE advisor = {} AND client_outcome_id = {}",
        call.advisor_id,
        call.data.client_outcome_id,
    )
    if not earlier:
        return None
    row = earlier[0]
    if row["request_hash"] != call.digest:
        raise Conflict(
            f"client_outcome_id {call.data.client_outcome_id} was used for another outcome",
            [FieldError("client_outcome_id", "already used for another outcome")],
        )
    return OutcomeOut(
        task_id=row["task"],
        status=row["task_status"],
        applied=bool(row["applied"]),
        callback_task_id=row["callback_task"],
    )


async def _lock_task(call: _Call) -> dict[str, Any]:
    lock = " FOR UPDATE" if is_postgres() else ""
    tasks = await fetch(
        "SELECT id, member, store, status, status_reason, expires_on, updated_at, done_at,"
        f" created_at FROM task WHERE id = {{}} AND assignee = {{}}{lock}",
        call.task_id,
        call.advisor_id,
    )
    if not tasks:
        raise NotFound(f"no task {call.task_id} of yours")
    task = tasks[0]
    # A phone whose clock was reset must not rewrite history: a call cannot come
    # before its task existed (a day's grace for clock drift).
    if call.recorded_at < task["created_at"] - CLOCK_GRACE:
        raise InvalidInput.on("recorded_at", "is before the task was made")
    return task


async def _apply(call: _Call, task: dict[str, Any]) -> OutcomeOut:
    """Complete the task if the call still counts, then do what the result asks for."""
    applied, detail = await _judge(call, task)
    await _contacted(call)
    now = clock.now()
    status = task["status"]
    if applied:
        status = "done"
        await _complete(call, task, now)
    settled_ids = [call.task_id] if applied else []
    callback_id: int | None = None
    result = call.data.result
    if result == "do_not_contact":
        settled_ids += await _do_not_contact(task["member"], call.recorded_at, call.tz)
    else:
        if result == "wrong_number":
            await contact.report_wrong_number(task["member"], call.recorded_at)
        callback_id, missed = await _requested_by_call(call, task)
        detail = missed or detail
    await settled(settled_ids)
    inserted = await fetch(
        "INSERT INTO outcome (task, advisor, client_outcome_id, channel, result, note,"
        " next_contact_on, recorded_at, received_at, request_hash, applied, task_status,"
        " callback_task) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})"
        " ON CONFLICT (advisor, client_outcome_id) DO NOTHING RETURNING id",
        call.task_id,
        call.advisor_id,
        call.data.client_outcome_id,
        call.data.channel,
        result,
        call.data.note,
        call.data.next_contact_on,
        call.recorded_at,
        now,
        call.digest,
        applied,
        status,
        callback_id,
    )
    if not inserted:
        raise LostRace()
    return OutcomeOut(call.task_id, status, applied, callback_id, detail)


async def _contacted(call: _Call) -> None:
    """The task was worked, whatever came of the call: insights count it contacted
    (from its first call) and reached (if any call reached the member)."""
    await fetch(
        "UPDATE task SET contacted_at = CASE WHEN contacted_at IS NULL OR contacted_at > {}"
        " THEN {} ELSE contacted_at END, reached = (reached OR {}) WHERE id = {}",
        call.recorded_at,
        call.recorded_at,
        call.data.result in REACHED,
        call.task_id,
    )


async def _judge(call: _Call, task: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether the call completes its task, and why not."""
    asked = await fetch(
        "SELECT MIN(o.recorded_at) AS at FROM outcome o JOIN task t ON t.id = o.task"
        " WHERE t.member = {} AND o.result = 'do_not_contact'",
        task["member"],
    )
    at = asked[0]["at"] if asked else None
    # An aggregate: SQLite gives the stored text.
    asked_at = None if at is None else clock.as_datetime(at)
    if asked_at is not None and call.recorded_at > asked_at:
        return False, "the member had asked not to be contacted before this call"
    if task["status"] == "cancelled" and task["status_reason"] == "do_not_contact":
        # Cancelled by a request made after this call (else the branch above): had
        # the call arrived first it would have completed the task.
        return True, None
    return _applies(task, call.recorded_at, call.tz)


async def _complete(call: _Call, task: dict[str, Any], now: datetime) -> None:
    result = call.data.result
    await fetch(
        "UPDATE task SET status = 'done', status_reason = {}, result = {}, done_at = {},"
        " updated_at = {} WHERE id = {}",
        result,
        result,
        call.recorded_at,
        now,
        call.task_id,
    )
    await write_history(
        [{"id": call.task_id, "assignee": call.advisor_id}], task["status"], "done", result, now
    )
    if result in REACHED:
        await convert_late(call.task_id, task["member"], call.recorded_at)


async def _requested_by_call(call: _Call, task: dict[str, Any]) -> tuple[int | None, str | None]:
    """A delivery or a callback the member asked for: (the task made, why none was)."""
    today = clock.today(call.tz)
    callback_on = call.data.next_contact_on
    if call.data.result == "delivery_requested":
        # The member's request stands even when the call no longer completes its
        # task; the made task's id is answered as the callback's would be.
        made = await _made_by_call(
            task, "delivery", callback_on or call.recorded_on, today, "会员要求送货上门"
        )
        return made, None
    if callback_on is None:
        return None, None
    made = await _made_by_call(task, "callback", callback_on, today, "会员约定回访")
    if made is None:
        return None, f"no callback: {callback_on} had passed by the time this arrived"
    return made, None


def _applies(task: dict[str, Any], recorded_at: datetime, tz: tzinfo) -> tuple[bool, str | None]:
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
        lapsed_at, _ = clock.day_bounds(clock.as_date(expires_on) + timedelta(days=1), tz)
        if recorded_at < lapsed_at:
            return True, None
        return (
            False,
            f"the task expired on {expires_on}: the call is recorded, the task stays expired",
        )
    if recorded_at < task["updated_at"]:
        return True, None
    return False, (
        f"the task was cancelled ({task['status_reason']}): the call is recorded,"
        " the task stays cancelled"
    )


async def _do_not_contact(member_id: int, recorded_at: datetime, tz: tzinfo) -> list[int]:
    """The member asked not to be contacted: flag them and cancel every task that was
    still open when they asked — open now, expired since, or done by a call made
    after they asked (an offline queue may bring those first)."""
    await contact.mark_do_not_contact(member_id)
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
    rule = await enabled_rule(kind)
    if rule is None or rule.window(on)[1] < today:
        return None  # off, or asked for a day already past by the time the phone synced
    key = f"{kind}:{task['id']}:{on}"
    row = task_row(kind, task["member"], rule, on, reason, f"task:{task['id']}", key)
    await insert_task_rows([row], RunReport())
    rows = await fetch("SELECT id FROM task WHERE dedupe_key = {}", key)
    return int(rows[0]["id"]) if rows else None


async def snooze(advisor_id: int, timezone: str, task_id: int, until: date) -> SnoozeOut:
    async def work() -> SnoozeOut:
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
        if until < clock.today(clock.zone(timezone)):
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
        return SnoozeOut(task_id=task_id, status="open", due_date=until)

    return await in_write_transaction(work)
