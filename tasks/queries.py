"""The read side of follow-ups: an advisor's list for a day."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import msgspec

from core import clock
from core.db import fetch, in_list, is_postgres, rows_by
from core.money import share, yuan_text
from members.babies import stage_for_age
from members.policy import policy_of_row
from members.queries import (
    ADVISORS,
    MEMBERS,
    POLICY,
    PURCHASES,
    STORES,
    babies_from_json,
    babies_json,
    expiring_from_json,
    expiring_json,
)
from members.tiers import effective_tier
from members.views import member_profile
from tasks.playbook import urgent_kinds
from tasks.runout import CATEGORY_NAMES, member_run_outs
from tasks.schemas import (
    Card,
    CardMember,
    CardTask,
    DoneTask,
    MemberView,
    OutcomeView,
    PastTask,
    SyncOut,
    SyncTask,
    TodayCounts,
    TodayOut,
)

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render_script(template: str, context: dict[str, str]) -> str:
    """Fill {store}, {advisor}, {months}, {stage}, {product}, {tier}, {date}; a placeholder HQ typed
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
    if row["kind"] == "tier_up":
        context["tier"] = topic
    if row["kind"] == "points_expiring":
        context["date"] = topic
    return context


async def advisor_today(advisor_id: int, timezone: str, day: date | None) -> TodayOut:
    """The advisor's open tasks due by ``day`` and not expired, one card per member,
    most urgent first: overdue, then priority, then due date. One statement: the
    policy, the urgent kinds and the points about to lapse come with the tasks."""
    tz = clock.zone(timezone)
    day = day or clock.today(tz)
    start, end = clock.day_bounds(day, tz)
    done_today = (
        "SELECT COUNT(*) FROM task d WHERE d.assignee = {} AND d.status = 'done'"
        " AND d.updated_at >= {} AND d.updated_at < {}"
    )
    rows = await fetch(
        "SELECT t.id, t.kind, t.topic, t.reason, t.script, t.due_on, t.expires_on, t.priority,"
        " t.member, m.name, m.phone, m.points_balance, m.last_purchased_at, m.tier, m.tier_year,"
        f" s.name AS store_name, a.name AS advisor_name, {babies_json('t.member')} AS babies,"
        f" {expiring_json('t.member', 'pol.expiry_warning_days')} AS expiring,"
        f" t.kind IN {urgent_kinds()} AS urgent, pol.value_per_100_fen, pol.expiry_months,"
        f" pol.expiry_warning_days, pol.tiers, ({done_today}) AS done_today"
        f" FROM task t JOIN {MEMBERS} m ON m.id = t.member JOIN {STORES} s ON s.id = t.store"
        f" JOIN {ADVISORS} a ON a.id = t.assignee CROSS JOIN {POLICY} pol"
        " WHERE t.assignee = {} AND t.status = 'open' AND t.due_on <= {} AND t.expires_on >= {}",
        day,
        day,
        advisor_id,
        start,
        end,
        advisor_id,
        day,
        day,
    )
    if not rows:
        count = done_today.replace("COUNT(*)", "COUNT(*) AS n")
        counted = await fetch(count, advisor_id, start, end)
        return TodayOut(date=day, counts=TodayCounts(0, 0, int(counted[0]["n"])), cards=[])
    done = int(rows[0]["done_today"])
    policy = policy_of_row(rows[0])
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
            urgent=bool(row["urgent"]),
        )
        card = cards.get(row["member"])
        if card is None:
            card = cards[row["member"]] = Card(
                member=CardMember(
                    member_id=row["member"],
                    name=row["name"],
                    phone=row["phone"],
                    babies=babies_from_json(row["babies"], day),
                    points_balance=row["points_balance"],
                    last_purchase_at=row["last_purchased_at"],
                    tier=(tier := effective_tier(row["tier"], row["tier_year"], day)),
                    tier_name=policy.name_of(tier),
                    points_expiring=expiring_from_json(row["expiring"]),
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


async def done_today(advisor_id: int, timezone: str, day: date) -> list[DoneTask]:
    """The tasks the advisor finished on ``day`` (store-local), latest first: the
    phone's 已完成 section, counted as ``TodayCounts.done_today`` counts them."""
    start, end = clock.day_bounds(day, clock.zone(timezone))
    rows = await fetch(
        "SELECT t.id, t.kind, t.reason, t.member, t.result, m.name"
        f" FROM task t JOIN {MEMBERS} m ON m.id = t.member WHERE t.assignee = {{}}"
        " AND t.status = 'done' AND t.updated_at >= {} AND t.updated_at < {}"
        " ORDER BY t.updated_at DESC, t.id DESC",
        advisor_id,
        start,
        end,
    )
    return [
        DoneTask(r["id"], r["kind"], r["reason"], r["member"], r["name"], r["result"]) for r in rows
    ]


SYNC_PAGE = 500
_SYNC_COLUMNS = (
    "SELECT t.id, t.kind, t.topic, t.status, t.reason, t.script, t.due_on, t.expires_on,"
    " t.priority, t.member, t.result, t.assignee, t.change_seq, m.name, m.phone,"
    " s.name AS store_name, a.name AS advisor_name"
    f" FROM task t JOIN {MEMBERS} m ON m.id = t.member JOIN {STORES} s ON s.id = t.store"
    f" LEFT JOIN {ADVISORS} a ON a.id = t.assignee"
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


# --- what other domains ask of tasks ------------------------------------------------


async def settled_states(task_ids: list[int]) -> list[dict[str, Any]]:
    """Tasks as the score ledger credits them: ``id``, ``member``, ``assignee``,
    ``store``, ``status``, ``done_on`` (the store-local day of the call, for a done
    task) and ``converted_on`` (the day of the purchase that converted it)."""
    cond, args = in_list(task_ids, "bigint")
    rows = await fetch(
        "SELECT t.id, t.member, t.assignee, t.store, t.status, t.done_at, s.timezone,"
        f" p.purchased_on AS converted_on FROM task t JOIN {STORES} s ON s.id = t.store"
        f" LEFT JOIN {PURCHASES} p ON p.id = t.converted_purchase WHERE t.id {cond}",
        *args,
    )
    for t in rows:
        done_at = t.pop("done_at")
        t["done_on"] = (
            None
            if done_at is None
            else clock.local_date(clock.as_datetime(done_at), clock.zone(t["timezone"]))
        )
        t["converted_on"] = None if t["converted_on"] is None else clock.as_date(t["converted_on"])
    return rows


async def completion_by_advisor(
    first: date, last: date, advisor_ids: Sequence[int] | None = None
) -> dict[int, tuple[int, int]]:
    """Per advisor, tasks done and expired among those expiring from ``first`` to
    ``last``: the completion rate's two terms."""
    only, args = "", list[Any]()
    if advisor_ids is not None:
        cond, args = in_list(sorted(set(advisor_ids)), "int")
        only = f" AND assignee {cond}"
    rows = await fetch(
        "SELECT assignee, SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done,"
        " SUM(CASE WHEN status = 'expired' THEN 1 ELSE 0 END) AS expired FROM task"
        " WHERE status IN ('done', 'expired') AND expires_on BETWEEN {} AND {}"
        f"{only} GROUP BY assignee",
        first,
        last,
        *args,
    )
    return {int(r["assignee"]): (int(r["done"] or 0), int(r["expired"] or 0)) for r in rows}


def completion(done: int, expired: int) -> str | None:
    """Completion rate: done ÷ (done + expired), four places."""
    return share(done, done + expired)


async def open_assignments(task_ids: Sequence[int]) -> set[tuple[int, int]]:
    """(task, assignee) of those of the tasks that are still open."""
    if not task_ids:
        return set()
    cond, args = in_list(sorted(set(task_ids)), "bigint")
    rows = await fetch(f"SELECT id, assignee FROM task WHERE id {cond} AND status = 'open'", *args)
    return {(int(r["id"]), r["assignee"]) for r in rows}


def day_work(day: date, timezone: str) -> tuple[str, list[Any]]:
    """A relation of each advisor's work on ``day`` in ``timezone``: ``assignee``,
    ``n`` (open tasks due by then and not expired) and ``late`` (of those, overdue)."""
    return (
        "(SELECT t.assignee, COUNT(*) AS n, SUM(CASE WHEN t.due_on < {} THEN 1 ELSE 0 END)"
        f" AS late FROM task t JOIN {STORES} s ON s.id = t.store"
        " WHERE t.status = 'open' AND t.assignee IS NOT NULL AND t.due_on <= {}"
        " AND t.expires_on >= {} AND s.timezone = {} GROUP BY t.assignee)",
        [day, day, day, timezone],
    )


# --- the member at a glance ---------------------------------------------------------


async def member_view(
    store_ids: frozenset[int] | None,
    member_id: int,
    offset: int,
    limit: int,
    tasks_limit: int = 20,
) -> MemberView:
    """The member at a glance, for people of the member's home store: what the members
    domain knows of them, and the latest ``tasks_limit`` tasks they were the subject
    of with their outcomes."""
    profile = await member_profile(store_ids, member_id, offset, limit)
    return MemberView(
        **msgspec.structs.asdict(profile),
        tasks=await past_tasks(member_id, tasks_limit),
        run_outs=await member_run_outs(member_id),
    )


async def past_tasks(member_id: int, limit: int = 20) -> list[PastTask]:
    tasks = await fetch(
        "SELECT id, kind, reason, status, due_on, converted_fen FROM task WHERE member = {}"
        " ORDER BY due_on DESC, id DESC LIMIT {}",
        member_id,
        limit,
    )
    outcomes = await rows_by(
        "task",
        "SELECT task, channel, result, note, recorded_at, applied FROM outcome"
        " WHERE task {ids} ORDER BY recorded_at",
        [t["id"] for t in tasks],
    )
    return [
        PastTask(
            task_id=t["id"],
            kind=t["kind"],
            reason=t["reason"],
            status=t["status"],
            due_date=clock.as_date(t["due_on"]),
            outcomes=[
                OutcomeView(
                    o["channel"], o["result"], o["note"], o["recorded_at"], bool(o["applied"])
                )
                for o in outcomes.get(t["id"], [])
            ],
            converted_amount=(
                None if t["converted_fen"] is None else yuan_text(t["converted_fen"])
            ),
        )
        for t in tasks
    ]


async def assigned_tasks_due(first: date, last: date) -> list[dict[str, Any]]:
    """Open or lapsed tasks with an assignee, due from ``first`` to ``last``, in the
    order they fell due (the demo's advisors work through them)."""
    return await fetch(
        "SELECT id, assignee, due_on, expires_on FROM task WHERE due_on >= {} AND due_on <= {}"
        " AND assignee IS NOT NULL AND status IN ('open', 'expired') ORDER BY due_on, id",
        first,
        last,
    )
