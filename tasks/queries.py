"""The read side of follow-ups: an advisor's list for a day."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from members import clock
from members.db import fetch
from members.services import babies_of_members, stage_for_age
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


async def advisor_today(advisor_id: int, day: date | None) -> TodayOut:
    """The advisor's open tasks due by ``day`` and not expired, one card per member,
    most urgent first: overdue, then priority, then due date."""
    store = await fetch(
        "SELECT s.timezone FROM advisor a JOIN store s ON s.id = a.store WHERE a.id = {}",
        advisor_id,
    )
    tz = clock.zone(store[0]["timezone"])
    day = day or clock.today(tz)
    rows = await fetch(
        "SELECT t.id, t.kind, t.topic, t.reason, t.script, t.due_on, t.expires_on, t.priority,"
        " t.member, m.name, m.phone, m.points_balance, m.last_purchased_at,"
        " s.name AS store_name, a.name AS advisor_name"
        " FROM task t JOIN member m ON m.id = t.member JOIN store s ON s.id = t.store"
        " JOIN advisor a ON a.id = t.assignee"
        " WHERE t.assignee = {} AND t.status = 'open' AND t.due_on <= {} AND t.expires_on >= {}",
        advisor_id,
        day,
        day,
    )
    start, end = clock.day_bounds(day, tz)
    done = await fetch(
        "SELECT COUNT(DISTINCT e.task) AS n FROM task_event e JOIN task t ON t.id = e.task"
        " WHERE t.assignee = {} AND e.to_status = 'done' AND e.at >= {} AND e.at < {}",
        advisor_id,
        start,
        end,
    )
    babies = await babies_of_members(sorted({r["member"] for r in rows}), day)
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
                    babies=babies.get(row["member"], []),
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
            due=len(rows),
            overdue=sum(1 for r in rows if r["due_on"] < day),
            done_today=int(done[0]["n"]),
        ),
        cards=ordered,
    )
