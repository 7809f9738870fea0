"""The read side of follow-ups: an advisor's list for a day."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import msgspec

from members import clock
from members.db import fetch, in_list, is_postgres
from members.errors import NotFound
from members.schemas import BabyOut
from members.services import babies_of_members, baby_out, fen_to_yuan, stage_for_age
from tasks.schemas import (
    Card,
    CardMember,
    CardTask,
    LedgerEntry,
    MemberView,
    OutcomeView,
    PastTask,
    PurchaseLineView,
    PurchaseView,
    SyncOut,
    SyncTask,
    TodayCounts,
    TodayOut,
)
from tasks.services import CATEGORY_NAMES

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render_script(template: str, context: dict[str, str]) -> str:
    """Fill {store}, {advisor}, {months}, {stage}, {product}; a placeholder HQ typed
    that nothing fills is left as written rather than failing the list."""
    return _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), template)


def _context(row: dict[str, Any]) -> dict[str, str]:
    context = {"store": row["store_name"], "advisor": row["advisor_name"]}
    topic = row["topic"] or ""
    if row["kind"] in ("stage_up", "milestone") and topic.isdigit():
        months = int(topic)
        context["months"] = topic
        context["stage"] = str(stage_for_age(months))
    if row["kind"] == "replenish":
        context["product"] = CATEGORY_NAMES.get(topic, topic)
    return context


def _babies_json() -> str:
    """A member's babies as one JSON array column, so the list is a single query."""
    if is_postgres():
        return (
            "(SELECT json_agg(json_build_object('id', b.id, 'name', b.name, 'birth_date',"
            " b.birth_date, 'due_date', b.due_date) ORDER BY b.id) FROM baby b"
            " WHERE b.member = t.member)"
        )
    return (
        "(SELECT json_group_array(json_object('id', b.id, 'name', b.name, 'birth_date',"
        " b.birth_date, 'due_date', b.due_date)) FROM (SELECT * FROM baby"
        " WHERE member = t.member ORDER BY id) b)"
    )


def _babies(raw: str | None, day: date) -> list[BabyOut]:
    return [
        baby_out(
            b["id"],
            b["name"],
            date.fromisoformat(b["birth_date"]) if b["birth_date"] else None,
            date.fromisoformat(b["due_date"]) if b["due_date"] else None,
            day,
        )
        for b in msgspec.json.decode(raw or "[]")
    ]


async def advisor_today(advisor_id: int, timezone: str, day: date | None) -> TodayOut:
    """The advisor's open tasks due by ``day`` and not expired, one card per member,
    most urgent first: overdue, then priority, then due date. One query."""
    tz = clock.zone(timezone)
    day = day or clock.today(tz)
    start, end = clock.day_bounds(day, tz)
    done_today = (
        "SELECT COUNT(*) FROM task d WHERE d.assignee = {} AND d.status = 'done'"
        " AND d.updated_at >= {} AND d.updated_at < {}"
    )
    rows = await fetch(
        "SELECT t.id, t.kind, t.topic, t.reason, t.script, t.due_on, t.expires_on, t.priority,"
        " t.member, m.name, m.phone, m.points_balance, m.last_purchased_at,"
        f" s.name AS store_name, a.name AS advisor_name, {_babies_json()} AS babies,"
        f" ({done_today}) AS done_today"
        " FROM task t JOIN member m ON m.id = t.member JOIN store s ON s.id = t.store"
        " JOIN advisor a ON a.id = t.assignee"
        " WHERE t.assignee = {} AND t.status = 'open' AND t.due_on <= {} AND t.expires_on >= {}",
        advisor_id,
        start,
        end,
        advisor_id,
        day,
        day,
    )
    if rows:
        done = int(rows[0]["done_today"])
    else:
        done = int(
            (await fetch(done_today.replace("COUNT(*)", "COUNT(*) AS n"), advisor_id, start, end))[
                0
            ]["n"]
        )
    cards: dict[int, Card] = {}
    for row in rows:
        task = CardTask(
            task_id=row["id"],
            kind=row["kind"],
            reason=row["reason"],
            script=render_script(row["script"], _context(row)),
            due_date=row["due_on"],
            expires_on=row["expires_on"],
            overdue=row["due_on"] < day,
            priority=row["priority"],
        )
        card = cards.get(row["member"])
        if card is None:
            card = cards[row["member"]] = Card(
                member=CardMember(
                    member_id=row["member"],
                    name=row["name"],
                    phone=row["phone"],
                    babies=_babies(row["babies"], day),
                    points_balance=row["points_balance"],
                    last_purchase_at=row["last_purchased_at"],
                ),
                tasks=[],
            )
        card.tasks.append(task)

    def urgency(t: CardTask) -> tuple[bool, int, date, int]:
        return (not t.overdue, t.priority, t.due_date, t.task_id)

    for card in cards.values():
        card.tasks.sort(key=urgency)
    ordered = sorted(cards.values(), key=lambda c: (urgency(c.tasks[0]), c.member.member_id))
    return TodayOut(
        date=day,
        counts=TodayCounts(
            due=len(rows), overdue=sum(1 for r in rows if r["due_on"] < day), done_today=done
        ),
        cards=ordered,
    )


SYNC_PAGE = 500
_SYNC_COLUMNS = (
    "SELECT t.id, t.kind, t.topic, t.status, t.reason, t.script, t.due_on, t.expires_on,"
    " t.priority, t.member, t.result, t.assignee, t.change_seq, m.name, m.phone,"
    " s.name AS store_name, a.name AS advisor_name"
    " FROM task t JOIN member m ON m.id = t.member JOIN store s ON s.id = t.store"
    " LEFT JOIN advisor a ON a.id = t.assignee"
)


class BadCursor(ValueError):
    pass


def _parse_cursor(cursor: str) -> tuple[int, int]:
    try:
        seq, _, task = cursor.partition(".")
        position = int(seq), int(task)
    except ValueError:
        raise BadCursor("not a cursor this server gave out") from None
    if not all(0 <= n <= _LAST_ID for n in position):
        raise BadCursor("not a cursor this server gave out")
    return position


def _past(horizon: int) -> str:
    """A cursor after every position below the horizon."""
    return f"{horizon - 1}.{_LAST_ID}"


_LAST_ID = 2**62


async def _horizon() -> int:
    """Changes at positions below this have committed, and no later commit can take
    a position below it."""
    if is_postgres():
        rows = await fetch("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS h")
    else:
        rows = await fetch("SELECT n + 1 AS h FROM task_change_counter")
    return int(rows[0]["h"])


async def advisor_changes(advisor_id: int, since: str | None, limit: int) -> SyncOut:
    """Every task of the advisor created or changed after ``since`` (including ones
    reassigned away, marked so), in commit order, a page at a time; without
    ``since``, the advisor's open tasks and a cursor to continue from."""
    horizon = await _horizon()
    if since is None:
        rows = await fetch(
            f"{_SYNC_COLUMNS} WHERE t.assignee = {{}} AND t.status = 'open' ORDER BY t.id",
            advisor_id,
        )
        return SyncOut([_sync_task(r, advisor_id) for r in rows], _past(horizon), False)
    seq, task = _parse_cursor(since)
    rows = await fetch(
        f"{_SYNC_COLUMNS} WHERE (t.assignee = {{}} OR t.previous_assignee = {{}})"
        " AND t.change_seq < {} AND (t.change_seq > {} OR (t.change_seq = {} AND t.id > {}))"
        " ORDER BY t.change_seq, t.id LIMIT {}",
        advisor_id,
        advisor_id,
        horizon,
        seq,
        seq,
        task,
        limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        cursor = f"{rows[-1]['change_seq']}.{rows[-1]['id']}"
    elif seq < horizon - 1:
        # Nothing new: move up to the horizon, so the next call does not look again
        # at positions that can no longer change.
        cursor = _past(horizon)
    else:
        cursor = since
    return SyncOut([_sync_task(r, advisor_id) for r in rows], cursor, more)


def _sync_task(row: dict[str, Any], advisor_id: int) -> SyncTask:
    return SyncTask(
        task_id=row["id"],
        kind=row["kind"],
        status=row["status"],
        reason=row["reason"],
        script=render_script(row["script"], _context(row)),
        due_date=row["due_on"],
        expires_on=row["expires_on"],
        priority=row["priority"],
        member_id=row["member"],
        member_name=row["name"],
        member_phone=row["phone"],
        result=row["result"],
        reassigned_away=row["assignee"] != advisor_id,
    )


REPEAT_WINDOW_DAYS = 90


async def member_view(
    store_ids: frozenset[int], member_id: int, offset: int, limit: int
) -> MemberView:
    """The member at a glance, for an advisor of the member's home store."""
    members = await fetch(
        "SELECT m.id, m.name, m.phone, m.home_store, m.joined_on, m.do_not_contact,"
        " m.wrong_number_at, m.points_balance, s.code AS store_code, s.timezone,"
        " a.code AS advisor_code FROM member m JOIN store s ON s.id = m.home_store"
        " LEFT JOIN advisor a ON a.id = m.owning_advisor WHERE m.id = {}",
        member_id,
    )
    if not members or members[0]["home_store"] not in store_ids:
        raise NotFound(f"no member {member_id} at your store")
    m = members[0]
    today = clock.today(clock.zone(m["timezone"]))
    ledger = await fetch(
        "SELECT l.kind, l.points, l.occurred_at, s.code FROM points_ledger l"
        " JOIN store s ON s.id = l.store WHERE l.member = {} ORDER BY l.id DESC LIMIT 10",
        member_id,
    )
    purchases = await fetch(
        "SELECT p.id, p.receipt_id, p.purchased_at, p.total_fen, p.points_earned, s.code"
        " FROM purchase p JOIN store s ON s.id = p.store WHERE p.member = {}"
        " ORDER BY p.purchased_at DESC, p.id DESC LIMIT {} OFFSET {}",
        member_id,
        limit,
        offset,
    )
    counted = await fetch("SELECT COUNT(*) AS n FROM purchase WHERE member = {}", member_id)
    lines: dict[int, list[PurchaseLineView]] = {}
    if purchases:
        cond, args = in_list([p["id"] for p in purchases], "bigint")
        for line in await fetch(
            "SELECT l.purchase, pr.sku, pr.name, l.quantity, l.amount_fen FROM purchase_line l"
            f" JOIN product pr ON pr.id = l.product WHERE l.purchase {cond} ORDER BY l.line_no",
            *args,
        ):
            lines.setdefault(line["purchase"], []).append(
                PurchaseLineView(
                    line["sku"],
                    line["name"],
                    line["quantity"],
                    str(fen_to_yuan(line["amount_fen"])),
                )
            )
    latest_two = await fetch(
        "SELECT purchased_on FROM purchase WHERE member = {} ORDER BY purchased_at DESC LIMIT 2",
        member_id,
    )
    repeat = len(latest_two) == 2 and (
        (
            clock.as_date(latest_two[0]["purchased_on"])
            - clock.as_date(latest_two[1]["purchased_on"])
        ).days
        <= REPEAT_WINDOW_DAYS
    )
    tasks = await fetch(
        "SELECT id, kind, reason, status, due_on, converted_fen FROM task WHERE member = {}"
        " ORDER BY due_on DESC, id DESC LIMIT 20",
        member_id,
    )
    outcomes: dict[int, list[OutcomeView]] = {}
    if tasks:
        cond, args = in_list([t["id"] for t in tasks], "bigint")
        for o in await fetch(
            "SELECT task, channel, result, note, recorded_at, applied FROM outcome"
            f" WHERE task {cond} ORDER BY recorded_at",
            *args,
        ):
            outcomes.setdefault(o["task"], []).append(
                OutcomeView(
                    o["channel"], o["result"], o["note"], o["recorded_at"], bool(o["applied"])
                )
            )
    return MemberView(
        member_id=m["id"],
        name=m["name"],
        phone=m["phone"],
        home_store=m["store_code"],
        owning_advisor=m["advisor_code"],
        joined_on=clock.as_date(m["joined_on"]),
        do_not_contact=bool(m["do_not_contact"]),
        wrong_number_reported=m["wrong_number_at"] is not None,
        babies=(await babies_of_members([member_id], today)).get(member_id, []),
        points_balance=m["points_balance"],
        ledger=[LedgerEntry(r["kind"], r["points"], r["occurred_at"], r["code"]) for r in ledger],
        purchases=[
            PurchaseView(
                purchase_id=p["id"],
                receipt_id=p["receipt_id"],
                store_code=p["code"],
                purchased_at=p["purchased_at"],
                total=str(fen_to_yuan(p["total_fen"])),
                points_earned=p["points_earned"],
                lines=lines.get(p["id"], []),
            )
            for p in purchases
        ],
        purchases_total=int(counted[0]["n"]),
        repeat_within_90_days=repeat,
        tasks=[
            PastTask(
                task_id=t["id"],
                kind=t["kind"],
                reason=t["reason"],
                status=t["status"],
                due_date=clock.as_date(t["due_on"]),
                outcomes=outcomes.get(t["id"], []),
                converted_amount=(
                    str(fen_to_yuan(t["converted_fen"])) if t["converted_fen"] is not None else None
                ),
            )
            for t in tasks
        ],
    )
