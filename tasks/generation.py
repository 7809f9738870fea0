"""Follow-ups made by events, in the event's own transaction: a new member's
welcome, a purchase's followup_3d and replenish (and the end of the member's
reactivate). The calendar's kinds are made by the daily run (``tasks.daily``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from core.db import days_after, fetch, in_list, rows_source
from members.babies import STAGE_BOUNDARIES_MONTHS, stage_for_age
from members.events import MemberJoined, PurchaseRecorded
from members.queries import category_history, store_todays
from tasks.lifecycle import RunReport, insert_task_rows, transition
from tasks.playbook import Rule, load_rules
from tasks.runout import CATEGORY_NAMES, run_out

# A stage_up counts as kept when the next stage is bought within this many days of
# the boundary.
KEEP_DAYS = 30


def task_row(
    kind: str,
    member: int,
    rule: Rule,
    anchor: date,
    reason: str,
    cause: str,
    key: str,
    topic: str = "",
) -> tuple[Any, ...]:
    """One row of ``lifecycle.TASK_ROW`` for a task anchored on ``anchor``."""
    due, expires = rule.window(anchor)
    return (
        kind,
        member,
        topic,
        reason,
        rule.script,
        anchor,
        due,
        expires,
        rule.priority,
        cause,
        key,
    )


async def on_members_joined(joined: list[MemberJoined]) -> None:
    welcome = (await load_rules()).get("welcome")
    if welcome is None or not welcome.enabled:
        return
    today = await store_todays(j.store_id for j in joined)
    rows = [
        task_row(
            "welcome",
            j.member_id,
            welcome,
            j.joined_on,
            "新会员欢迎",
            f"member:{j.member_id}",
            f"welcome:{j.member_id}",
        )
        for j in joined
        # Registered long ago (a back-filled history): nothing to do now.
        if not j.do_not_contact and welcome.window(j.joined_on)[1] >= today[j.store_id]
    ]
    await insert_task_rows(rows, RunReport())


async def on_purchases(recorded: list[PurchaseRecorded]) -> None:
    """Any purchase ends the member's open reactivate, every purchase day gets its
    followup_3d, and each category with a known supply gets a replenish that
    supersedes the older one."""
    rules = await load_rules()
    members = sorted({p.member_id for p in recorded})
    cond, args = in_list(members, "bigint")
    await transition(f"kind = 'reactivate' AND member {cond}", args, "cancelled", "purchased")

    # An old receipt sent late must not raise a task that has already lapsed.
    today = await store_todays(p.store_id for p in recorded)
    rows: list[tuple[Any, ...]] = []
    followup = rules.get("followup_3d")
    if followup is not None and followup.enabled:
        rows += [
            task_row(
                "followup_3d",
                p.member_id,
                followup,
                p.purchased_on,
                "购买后回访",
                f"purchase:{p.purchase_id}",
                f"followup_3d:{p.member_id}:{p.purchased_on}",
            )
            for p in recorded
            if followup.window(p.purchased_on)[1] >= today[p.store_id]
        ]
    replenish = rules.get("replenish")
    if replenish is not None and replenish.enabled:
        rows += await _replenish_rows(recorded, replenish, today)
    await insert_task_rows(rows, RunReport())
    await _keep_stage_ups(recorded)
    # Keep one open replenish per member and category: the latest run-out wins,
    # whichever order the receipts arrived in.
    await transition(
        "id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY member, topic"
        " ORDER BY anchor_on DESC, id DESC) AS rn FROM task WHERE kind = 'replenish'"
        f" AND status = 'open' AND member {cond}) AS ranked WHERE rn > 1)",
        args,
        "cancelled",
        "superseded",
    )


async def _keep_stage_ups(recorded: list[PurchaseRecorded]) -> None:
    """A stage_up is kept when its member buys the stage it is for (or a later one)
    within 30 days of the boundary: the 解冻 plan's own measure of success."""
    bought = sorted(
        {
            (p.member_id, line.stage, p.purchased_on)
            for p in recorded
            for line in p.lines
            if line.stage is not None
        }
    )
    if not bought:
        return
    source, args = rows_source([("member", "bigint"), ("stage", "int"), ("day", "date")], bought)
    stage_for = " ".join(f"WHEN '{m}' THEN {stage_for_age(m)}" for m in STAGE_BOUNDARIES_MONTHS)
    await fetch(
        "UPDATE task SET kept_on = k.day FROM (SELECT t.id, MIN(b.day) AS day FROM task t"
        f" JOIN ({source}) AS b ON b.member = t.member WHERE t.kind = 'stage_up'"
        f" AND t.kept_on IS NULL AND b.stage >= CASE t.topic {stage_for} END"
        f" AND b.day >= t.anchor_on AND b.day <= {days_after('t.anchor_on', KEEP_DAYS)}"
        " GROUP BY t.id) AS k WHERE task.id = k.id",
        *args,
    )


async def _replenish_rows(
    recorded: list[PurchaseRecorded], rule: Rule, today: dict[int, date]
) -> list[tuple[Any, ...]]:
    # The latest purchase of each (member, category) with a known supply.
    latest: dict[tuple[int, str], PurchaseRecorded] = {}
    for r in recorded:
        for line in r.lines:
            if line.days_of_supply is not None:
                key = (r.member_id, line.category)
                if key not in latest or latest[key].purchased_at < r.purchased_at:
                    latest[key] = r
    if not latest:
        return []
    # (member, category) -> purchase day -> units and label days of supply
    bought: dict[tuple[int, str], dict[date, list[int]]] = defaultdict(dict)
    for (member, category, day), (units, label_days) in (
        await category_history(sorted({m for m, _ in latest}))
    ).items():
        bought[(member, category)][day] = [units, label_days]
    rows = []
    for (member, category), purchase in latest.items():
        runs_out = run_out(bought[(member, category)], purchase.purchased_on)
        if runs_out is None or rule.window(runs_out)[1] < today[purchase.store_id]:
            continue
        name = CATEGORY_NAMES.get(category, category)
        # By purchase: a second purchase the same day makes a later run-out, which
        # then supersedes the first day's task.
        rows.append(
            task_row(
                "replenish",
                member,
                rule,
                runs_out,
                f"{name}预计{runs_out.month}月{runs_out.day}日用完",
                f"purchase:{purchase.purchase_id}",
                f"replenish:{member}:{category}:{purchase.purchase_id}",
                topic=category,
            )
        )
    return rows
