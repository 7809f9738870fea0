"""Follow-ups that points make: a member reaching a higher tier (tier_up, 恭喜升级), a
lot of points about to lapse (points_expiring, 积分即将过期, made by the daily run),
and what a returned receipt undoes: its open follow-ups and the conversion it made."""

from __future__ import annotations

from datetime import date, timedelta

from core import clock
from core.db import fetch, in_list, insert_count, param
from core.events import bus
from members.events import PurchaseReturned, TierReached
from members.policy import load_policy
from members.queries import LOTS, MEMBERS
from tasks.events import TaskSettled
from tasks.generation import task_row
from tasks.lifecycle import TASK_INSERT, RunReport, insert_task_rows, transition
from tasks.playbook import Rule, enabled_rule

MIN_EXPIRING_POINTS = 100  # a smaller lot is not worth a call


async def on_tiers_reached(reached: list[TierReached]) -> None:
    rule = await enabled_rule("tier_up")
    if rule is None:
        return
    rows = [
        task_row(
            "tier_up",
            r.member_id,
            rule,
            r.reached_on,
            f"会员升级为{r.tier_name}",
            f"tier:{r.tier}:{r.year}",
            f"tier_up:{r.member_id}:{r.tier}:{r.year}",
            topic=r.tier_name,
        )
        for r in reached
    ]
    await insert_task_rows(rows, RunReport())


async def on_purchases_returned(returned: list[PurchaseReturned]) -> None:
    """A receipt brought back whole: its open follow-ups go (status cancelled, reason
    returned) and a task it converted is no longer converted (the score ledger
    reconciles the conversion's fact)."""
    whole = sorted({r.purchase_id for r in returned if r.whole})
    if not whole:
        return
    causes, cause_args = in_list([f"purchase:{p}" for p in whole], "text")
    await transition(f"cause {causes}", cause_args, "cancelled", "returned")
    cond, args = in_list(whole, "bigint")
    undone = await fetch(
        "UPDATE task SET converted_purchase = NULL, converted_fen = NULL"
        f" WHERE converted_purchase {cond} RETURNING id",
        *args,
    )
    if undone:
        await bus.publish([TaskSettled(int(r["id"])) for r in undone])


async def insert_points_expiring(rule: Rule, day: date, timezone: str) -> int:
    """The daily run's share: one task per lot of at least 100 points lapsing within
    the policy's warning days, for the zone's members, due today and open until the
    lot's last day. A lot is warned of once, whenever the run first sees it."""
    warn_days = (await load_policy()).expiry_warning_days
    return await insert_count(
        f"{TASK_INSERT} SELECT 'points_expiring', m.id, m.home_store, m.owner,"
        f" CAST(l.expires_on AS text), '积分即将过期:' || CAST(l.points AS text) || '分',"
        f" {param('text')}, l.expires_on, {param('date')}, l.expires_on, {param('int')},"
        f" 'open', 'lot:' || CAST(l.id AS text),"
        " 'points_expiring:' || CAST(m.id AS text) || ':' || CAST(l.expires_on AS text),"
        f" {param('timestamptz')}, {param('timestamptz')}"
        f" FROM {LOTS} l JOIN {MEMBERS} m ON m.id = l.member"
        " WHERE l.points >= {} AND l.expires_on >= {} AND l.expires_on <= {}"
        " AND m.timezone = {} AND NOT m.do_not_contact"
        " ON CONFLICT (dedupe_key) DO NOTHING",
        rule.script,
        day,
        rule.priority,
        clock.now(),
        clock.now(),
        MIN_EXPIRING_POINTS,
        day,
        day + timedelta(days=warn_days),
        timezone,
    )
