"""The daily run: per time zone, shortly after local midnight, expire what lapsed and
raise the calendar's follow-ups (stage_up, milestone, reactivate, campaigns), each
kind one INSERT … SELECT over the zone's members, idempotent by dedupe key. Safe to
run twice, or from two processes at once."""

from __future__ import annotations

import calendar
import time
from collections.abc import Awaitable, Iterable, Sequence
from datetime import date, timedelta
from functools import partial
from typing import Any

from core import clock, metrics
from core.db import fetch, in_write_transaction, insert_count, param, rows_source
from members.babies import STAGE_BOUNDARIES_MONTHS, stage_before
from members.queries import BABIES, MEMBERS, STORES, store_ids_in_zone, timezones_in_use
from tasks.campaigns import insert_running_campaigns
from tasks.lifecycle import (
    TASK_INSERT,
    RunReport,
    announce_assigned,
    assign_unassigned,
    counted,
    transition,
)
from tasks.playbook import Rule, load_rules
from tasks.points_tasks import insert_points_expiring

RANGE_ROW = [
    ("birth_date", "date"),
    ("anchor_on", "date"),
    ("due_on", "date"),
    ("expires_on", "date"),
    ("months", "int"),
]


async def run_daily(day: date | None = None, timezones: Sequence[str] | None = None) -> RunReport:
    """Expire lapsed tasks, then raise the calendar's follow-ups, for every time zone
    that has stores (or the ones given). ``day`` defaults to each zone's own today."""
    if timezones is None:
        timezones = await timezones_in_use()
    report = RunReport()
    for timezone in timezones:
        local_day = day or clock.today(clock.zone(timezone))
        started = time.perf_counter()
        report.add(await in_write_transaction(partial(_run_zone, local_day, timezone)))
        metrics.DAILY_RUN_SECONDS.labels(timezone).set(time.perf_counter() - started)
        metrics.DAILY_RUN_FINISHED.labels(timezone).set_to_current_time()
    return report


async def _run_zone(day: date, timezone: str) -> RunReport:
    report = RunReport()
    rules = await load_rules()

    async def step(name: str, work: Awaitable[int]) -> None:
        started = time.perf_counter()
        report.created[name] += counted(metrics.TASKS_MADE, name, await work)
        report.seconds[name] += time.perf_counter() - started

    started = time.perf_counter()
    in_zone = f"store IN (SELECT id FROM {STORES} z WHERE z.timezone = {{}})"
    expired = await transition(
        f"expires_on < {{}} AND {in_zone}", [day, timezone], "expired", "expired"
    )
    report.count(report.expired, expired)
    for kind, n in report.expired.items():
        counted(metrics.TASKS_EXPIRED, kind, n)
    report.seconds["expire"] += time.perf_counter() - started
    for kind, make in (
        ("stage_up", _insert_stage_up),
        ("milestone", _insert_milestones),
        ("reactivate", _insert_reactivate),
    ):
        rule = rules.get(kind)
        if rule is not None and rule.enabled:
            await step(kind, make(rule, day, timezone))
    await step("campaign", insert_running_campaigns(rules.get("campaign"), day, timezone))
    expiring = rules.get("points_expiring")
    if expiring is not None and expiring.enabled:
        await step("points_expiring", insert_points_expiring(expiring, day, timezone))
    await assign_unassigned(await store_ids_in_zone(timezone))
    report.count(report.superseded, await _superseded_on(day, timezone))
    return report


async def _superseded_on(day: date, timezone: str) -> list[dict[str, Any]]:
    start, end = clock.day_bounds(day, clock.zone(timezone))
    return await fetch(
        f"SELECT t.kind FROM task_event e JOIN task t ON t.id = e.task JOIN {STORES} s"
        " ON s.id = t.store WHERE e.reason = 'superseded'"
        " AND e.at >= {} AND e.at < {} AND s.timezone = {}",
        start,
        end,
        timezone,
    )


def births_turning(months: int, on: date) -> tuple[date, date] | None:
    """The range of birth dates of babies who turn ``months`` old on ``on``
    (a baby born on the 31st turns a month old on the 30th of a 30-day month)."""
    index = on.year * 12 + on.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last_of_birth_month = calendar.monthrange(year, month)[1]
    if on.day > last_of_birth_month:
        return None
    if on.day == calendar.monthrange(on.year, on.month)[1]:
        return date(year, month, on.day), date(year, month, last_of_birth_month)
    return date(year, month, on.day), date(year, month, on.day)


def _month_age_ranges(
    ages: Iterable[int], rule: Rule, day: date
) -> list[tuple[date, date, date, date, int]]:
    """(birth date, anchor, due, expires, months) for every anchor open on ``day``.

    One row per birth date rather than per range: joined by equality, the planner
    walks the babies' birth-date index a day at a time instead of hashing every baby."""
    births = []
    for months in ages:
        for anchor in rule.anchors_open_on(day):
            turning = births_turning(months, anchor)
            if turning is not None:
                due, expires = rule.window(anchor)
                first, last = turning
                for offset in range((last - first).days + 1):
                    births.append((first + timedelta(days=offset), anchor, due, expires, months))
    return births


async def _insert_made(rule: Rule, sql: str, *args: Any) -> int:
    """A daily-run INSERT of tasks, counted. For a kind HQ marks urgent the tasks made
    are reported too, so that their advisors hear of them (at 08:00: the run is at
    night); for the others nothing is shipped back."""
    if not rule.urgent:
        return await insert_count(sql, *args)
    made = await fetch(f"{sql} RETURNING id, kind, assignee, reason", *args)
    await announce_assigned(made)
    return len(made)


async def _insert_from_babies(
    kind: str, rule: Rule, day: date, timezone: str, ages: Iterable[int], extra: str, reason: str
) -> int:
    ranges = _month_age_ranges(ages, rule, day)
    if not ranges:
        return 0
    source, args = rows_source(RANGE_ROW, ranges)
    now = clock.now()
    return await _insert_made(
        rule,
        f"{TASK_INSERT} SELECT {param('text')}, m.id, m.home_store, m.owner,"
        f" CAST(r.months AS TEXT), {reason}, {param('text')}, r.anchor_on, r.due_on,"
        f" r.expires_on, {param('int')}, 'open', 'baby:' || b.id,"
        f" {param('text')} || b.id || ':' || r.months,"
        f" {param('timestamptz')}, {param('timestamptz')}"
        f" FROM ({source}) AS r JOIN {BABIES} b ON b.birth_date = r.birth_date"
        f" JOIN {MEMBERS} m ON m.id = b.member"
        f" WHERE m.timezone = {param('text')} AND NOT m.do_not_contact {extra}"
        " ON CONFLICT (dedupe_key) DO NOTHING",
        kind,
        rule.script,
        rule.priority,
        f"{kind}:",
        now,
        now,
        *args,
        timezone,
    )


def _insert_stage_up(rule: Rule, day: date, timezone: str) -> Awaitable[int]:
    # r.months is a stage boundary; the member must still be on the stage below it.
    lower = " ".join(f"WHEN {m} THEN {stage_before(m)}" for m in STAGE_BOUNDARIES_MONTHS)
    return _insert_from_babies(
        "stage_up",
        rule,
        day,
        timezone,
        STAGE_BOUNDARIES_MONTHS,
        f"AND m.last_formula_stage = CASE r.months {lower} END",
        "'宝宝满' || r.months || '个月,准备转段'",
    )


def _insert_milestones(rule: Rule, day: date, timezone: str) -> Awaitable[int]:
    return _insert_from_babies(
        "milestone",
        rule,
        day,
        timezone,
        rule.params.get("ages_months", []),
        "",
        "'宝宝满' || r.months || '个月'",
    )


async def _insert_reactivate(rule: Rule, day: date, timezone: str) -> int:
    anchors = [(a, *rule.window(a)) for a in rule.anchors_open_on(day)]
    source, args = rows_source(
        [("anchor_on", "date"), ("due_on", "date"), ("expires_on", "date")], anchors
    )
    now = clock.now()
    return await _insert_made(
        rule,
        f"{TASK_INSERT} SELECT 'reactivate', m.id, m.home_store, m.owner, '',"
        f" '已' || {param('int')} || '天未购买', {param('text')}, r.anchor_on, r.due_on,"
        f" r.expires_on, {param('int')}, 'open', 'member:' || m.id,"
        " 'reactivate:' || m.id || ':' || r.anchor_on,"
        f" {param('timestamptz')}, {param('timestamptz')}"
        f" FROM ({source}) AS r JOIN {MEMBERS} m ON m.last_purchase_on = r.anchor_on"
        f" WHERE m.timezone = {param('text')} AND NOT m.do_not_contact"
        " ON CONFLICT (dedupe_key) DO NOTHING",
        rule.due_offset_days,
        rule.script,
        rule.priority,
        now,
        now,
        *args,
        timezone,
    )
