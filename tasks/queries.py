"""The read side of follow-ups: an advisor's list for a day."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import msgspec

from members import clock
from members.db import fetch, is_postgres
from members.schemas import BabyOut
from members.services import age_in_months, stage_for_age
from tasks.schemas import Card, CardMember, CardTask, TodayCounts, TodayOut
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
    out = []
    for b in msgspec.json.decode(raw or "[]"):
        birth = date.fromisoformat(b["birth_date"]) if b["birth_date"] else None
        months = age_in_months(birth, day) if birth else None
        out.append(
            BabyOut(
                baby_id=b["id"],
                name=b["name"],
                birth_date=birth,
                due_date=date.fromisoformat(b["due_date"]) if b["due_date"] else None,
                age_months=months,
                stage=stage_for_age(months) if months is not None and months >= 0 else None,
            )
        )
    return out


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
