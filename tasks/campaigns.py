"""HQ's campaigns (季节关怀): one task per member of a segment, due at the campaign's
start (or the day a member joins the segment) and expiring at its end."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from audit import trail
from core import clock, metrics
from core.db import fetch, in_write_transaction, insert_count, param
from core.errors import InvalidInput
from members.queries import MEMBERS, segment_conditions, timezones_in_use, unknown_store_codes
from tasks.lifecycle import TASK_INSERT, assign_unassigned, counted
from tasks.playbook import Rule, load_rules

DEFAULT_PRIORITY = 4


async def insert_running_campaigns(rule: Rule | None, day: date, timezone: str) -> int:
    """The daily run's share: every campaign running on ``day``, for the zone."""
    priority = rule.priority if rule else DEFAULT_PRIORITY
    campaigns = await fetch(
        "SELECT id, name, starts_on, ends_on, script, segment FROM campaign"
        " WHERE starts_on <= {} AND ends_on >= {}",
        day,
        day,
    )
    created = 0
    for campaign in campaigns:
        created += await insert_campaign_tasks(campaign, day, timezone, priority)
    return created


async def insert_campaign_tasks(
    campaign: dict[str, Any], day: date, timezone: str, priority: int
) -> int:
    """One task per member of the campaign's segment in ``timezone``, due at its start
    (or today, for a member who joined the segment since) and expiring at its end."""
    segment = campaign["segment"]
    if not isinstance(segment, dict):
        segment = json.loads(segment or "{}")
    where, args = segment_conditions(segment, day)
    starts_on = clock.as_date(campaign["starts_on"])
    now = clock.now()
    return await insert_count(
        f"{TASK_INSERT} SELECT 'campaign', m.id, m.home_store, m.owner,"
        f" {param('text')}, {param('text')}, {param('text')}, {param('date')}, {param('date')},"
        f" {param('date')}, {param('int')}, 'open', {param('text')},"
        f" {param('text')} || m.id, {param('timestamptz')}, {param('timestamptz')}"
        f" FROM {MEMBERS} m WHERE m.timezone = {{}} AND NOT m.do_not_contact{where}"
        " ON CONFLICT (dedupe_key) DO NOTHING",
        str(campaign["id"]),
        campaign["name"][:200],
        campaign["script"],
        starts_on,
        max(starts_on, day),
        clock.as_date(campaign["ends_on"]),
        priority,
        f"campaign:{campaign['id']}",
        f"campaign:{campaign['id']}:",
        now,
        now,
        timezone,
        *args,
    )


async def _check(starts_on: date, ends_on: date, segment: dict[str, Any]) -> None:
    if ends_on < starts_on:
        raise InvalidInput.on("ends_on", "is before starts_on")
    ages = segment.get("baby_age_months")
    if ages and ages[0] > ages[1]:
        raise InvalidInput.on("segment.baby_age_months", "give [youngest, oldest]")
    missing = await unknown_store_codes(segment.get("store_codes") or [])
    if missing:
        raise InvalidInput.on("segment.store_codes", f"no store {', '.join(missing[:10])}")


async def create_campaign(
    name: str, starts_on: date, ends_on: date, segment: dict[str, Any], script: str
) -> tuple[int, int]:
    """A campaign over a segment; members in it get their task from the first daily
    run inside the window, or at once when the window has begun. Returns the
    campaign's id and the tasks made now."""
    await _check(starts_on, ends_on, segment)
    rule = (await load_rules()).get("campaign")
    priority = rule.priority if rule else DEFAULT_PRIORITY

    async def work() -> tuple[int, int]:
        rows = await fetch(
            "INSERT INTO campaign (name, starts_on, ends_on, script, segment, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}) RETURNING id",
            name,
            starts_on,
            ends_on,
            script,
            json.dumps(segment, ensure_ascii=False),
            clock.now(),
        )
        campaign = {
            "id": rows[0]["id"],
            "name": name,
            "starts_on": starts_on,
            "ends_on": ends_on,
            "script": script,
            "segment": segment,
        }
        await trail.record(
            "campaign",
            str(campaign["id"]),
            "create",
            None,
            {k: v for k, v in campaign.items() if k != "id"},
        )
        made = 0
        for zone in await timezones_in_use():
            today = clock.today(clock.zone(zone))
            if starts_on <= today <= ends_on:
                made += await insert_campaign_tasks(campaign, today, zone, priority)
        counted(metrics.TASKS_MADE, "campaign", made)
        if made:
            stores = await fetch(
                "SELECT DISTINCT store FROM task WHERE assignee IS NULL AND status = 'open'"
            )
            await assign_unassigned([s["store"] for s in stores])
        return int(campaign["id"]), made

    return await in_write_transaction(work)


async def recent_campaigns(limit: int = 50) -> list[dict[str, Any]]:
    """The newest campaigns with how many tasks each has made so far."""
    return await fetch(
        "SELECT c.id, c.name, c.starts_on, c.ends_on, c.segment,"
        " (SELECT COALESCE(SUM(s.made), 0) FROM task_summary s WHERE s.campaign = c.id)"
        " AS tasks"
        " FROM campaign c ORDER BY c.id DESC LIMIT {}",
        limit,
    )


async def segment_size(segment: dict[str, Any], day: date) -> int:
    """How many members a segment reaches on ``day`` (those who may be contacted)."""
    await _check(day, day, segment)
    where, args = segment_conditions(segment, day)
    rows = await fetch(
        f"SELECT COUNT(*) AS n FROM {MEMBERS} m WHERE NOT m.do_not_contact{where}", *args
    )
    return int(rows[0]["n"])


async def open_task_count(advisor_id: int) -> int:
    """An advisor's open tasks: what follows their members when they leave."""
    rows = await fetch(
        "SELECT COUNT(*) AS n FROM task WHERE assignee = {} AND status = 'open'", advisor_id
    )
    return int(rows[0]["n"])
