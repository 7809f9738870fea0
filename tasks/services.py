"""Follow-up tasks: the playbook, generation from events and from the calendar,
assignment, supersession and expiry. Every statement is set-based: rows for a batch
of purchases or for a whole time zone's members go in one INSERT … SELECT."""

from __future__ import annotations

import calendar
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from itertools import pairwise
from typing import Any

from members import clock
from members.db import fetch, in_list, in_write_transaction, insert_count, param, rows_source
from members.errors import InvalidInput
from members.events import AdvisorLeft, MemberJoined, PurchaseRecorded
from tasks import events
from tasks.playbook import KINDS
from tasks.tables import PlaybookRule

STAGE_BOUNDARIES = {6: 1, 12: 2, 36: 3}  # months -> the stage a baby moves on from
CATEGORY_NAMES = {"formula": "奶粉", "probiotic": "益生菌", "cereal": "米粉", "care": "护理用品"}
# A member's own rate may not stray further than this from the product's label.
OWN_RATE_CLAMP = (0.5, 2.0)
MAX_SUPPLY_DAYS = 366


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    enabled: bool
    due_offset_days: int
    expire_offset_days: int
    priority: int
    script: str
    params: dict[str, Any]

    def window(self, anchor: date) -> tuple[date, date]:
        return (
            anchor + timedelta(days=self.due_offset_days),
            anchor + timedelta(days=self.expire_offset_days),
        )

    def anchors_open_on(self, day: date) -> list[date]:
        """Anchors whose task is due on or before ``day`` and not yet expired on it."""
        first = day - timedelta(days=self.expire_offset_days)
        last = day - timedelta(days=self.due_offset_days)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def load_rules() -> dict[str, Rule]:
    rows = await PlaybookRule.select()
    return {
        r["kind"]: Rule(
            kind=r["kind"],
            enabled=bool(r["enabled"]),
            due_offset_days=r["due_offset_days"],
            expire_offset_days=r["expire_offset_days"],
            priority=r["priority"],
            script=r["script"],
            params=r["params"]
            if isinstance(r["params"], dict)
            else json.loads(r["params"] or "{}"),
        )
        for r in rows
    }


def validate_rule(rule: Rule, index: int) -> None:
    where = f"rules[{index}]"
    if rule.kind not in KINDS:
        raise InvalidInput.on(f"{where}.kind", f"unknown kind; one of {', '.join(KINDS)}")
    if rule.expire_offset_days < rule.due_offset_days:
        raise InvalidInput.on(
            f"{where}.expire_offset_days", "a task cannot expire before it is due"
        )
    if not 1 <= rule.priority <= 9:
        raise InvalidInput.on(f"{where}.priority", "from 1 (most urgent) to 9")
    ages = rule.params.get("ages_months", [])
    if rule.kind == "milestone" and (
        not isinstance(ages, list) or not all(isinstance(a, int) and 0 < a <= 72 for a in ages)
    ):
        raise InvalidInput.on(f"{where}.params.ages_months", "a list of months from 1 to 72")


async def save_rules(rules: Sequence[Rule]) -> None:
    for i, rule in enumerate(rules):
        validate_rule(rule, i)
    kinds = [r.kind for r in rules]
    if len(set(kinds)) != len(kinds):
        raise InvalidInput.on("rules", "each kind at most once")

    async def work() -> None:
        for rule in rules:
            await PlaybookRule.update(
                {
                    PlaybookRule.enabled: rule.enabled,
                    PlaybookRule.due_offset_days: rule.due_offset_days,
                    PlaybookRule.expire_offset_days: rule.expire_offset_days,
                    PlaybookRule.priority: rule.priority,
                    PlaybookRule.script: rule.script,
                    PlaybookRule.params: json.dumps(rule.params, ensure_ascii=False),
                    PlaybookRule.updated_at: clock.now(),
                }
            ).where(PlaybookRule.kind == rule.kind)

    await in_write_transaction(work)


# --- writing tasks -----------------------------------------------------------

# The owning advisor takes the task if still active at the member's home store;
# otherwise it is left unassigned here and dealt out by assign_unassigned.
OWNER_IF_ACTIVE = "CASE WHEN a.active AND a.store = m.home_store THEN a.id END"
TASK_INSERT = (
    "INSERT INTO task (kind, member, store, assignee, topic, reason, script, anchor_on,"
    " due_on, expires_on, priority, status, cause, dedupe_key, created_at, updated_at)"
)
TASK_ROW = [
    ("kind", "text"),
    ("member", "bigint"),
    ("topic", "text"),
    ("reason", "text"),
    ("script", "text"),
    ("anchor_on", "date"),
    ("due_on", "date"),
    ("expires_on", "date"),
    ("priority", "int"),
    ("cause", "text"),
    ("dedupe_key", "text"),
]


@dataclass(slots=True)
class RunReport:
    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    expired: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Superseded at purchase time during the day the run is for: reported, not done, by it.
    superseded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def count(self, bucket: dict[str, int], rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            bucket[row["kind"]] += 1


async def insert_task_rows(rows: list[tuple[Any, ...]], report: RunReport) -> None:
    """Tasks made in Python (from a batch of events): one statement for all of them.
    Do-not-contact members get none; a dedupe key already taken adds nothing."""
    if not rows:
        return
    source, args = rows_source(TASK_ROW, rows)
    now = clock.now()
    created = await fetch(
        f"{TASK_INSERT} SELECT t.kind, t.member, m.home_store, {OWNER_IF_ACTIVE}, t.topic,"
        " t.reason, t.script, t.anchor_on, t.due_on, t.expires_on, t.priority, 'open', t.cause,"
        f" t.dedupe_key, {param('timestamptz')}, {param('timestamptz')}"
        f" FROM ({source}) AS t JOIN member m ON m.id = t.member"
        " LEFT JOIN advisor a ON a.id = m.owning_advisor"
        " WHERE NOT m.do_not_contact ON CONFLICT (dedupe_key) DO NOTHING"
        " RETURNING id, kind, store, assignee, reason",
        now,
        now,
        *args,
    )
    report.count(report.created, created)
    await events.tasks_assigned(created)
    orphans = {row["store"] for row in created if row["assignee"] is None}
    if orphans:
        await assign_unassigned(sorted(orphans))


async def transition(
    condition: str, args: Sequence[Any], to_status: str, reason: str
) -> list[dict[str, Any]]:
    """Move open tasks matching ``condition`` (SQL over ``task``) to a final status
    and write their history; returns the moved tasks' id and kind."""
    now = clock.now()
    moved: list[dict[str, Any]] = await fetch(
        "UPDATE task SET status = {}, status_reason = {}, updated_at = {}"
        f" WHERE status = 'open' AND ({condition}) RETURNING id, kind, assignee",
        to_status,
        reason,
        now,
        *args,
    )
    await write_history(moved, "open", to_status, reason, now)
    return moved


async def write_history(
    tasks: Sequence[dict[str, Any]], from_status: str, to_status: str, reason: str, at: Any
) -> None:
    if not tasks:
        return
    source, args = rows_source(
        [("task", "bigint"), ("assignee", "int")], [(t["id"], t["assignee"]) for t in tasks]
    )
    await fetch(
        "INSERT INTO task_event (task, from_status, to_status, reason, assignee, at)"
        f" SELECT task, {param('text')}, {param('text')}, {param('text')}, assignee,"
        f" {param('timestamptz')} FROM ({source}) AS s",
        from_status,
        to_status,
        reason,
        at,
        *args,
    )


async def assign_unassigned(store_ids: Sequence[int]) -> int:
    """Deal each store's unassigned open tasks out to its active advisors, the least
    loaded first, round-robin, in one statement."""
    if not store_ids:
        return 0
    stores, store_args = in_list(store_ids, "int")
    now = clock.now()
    assigned = await fetch(
        # Loads through the (assignee, status) index, advisor by advisor: a store's
        # open tasks are never scanned as a whole.
        "WITH loads AS ("
        " SELECT a.id, a.store, ROW_NUMBER() OVER (PARTITION BY a.store"
        " ORDER BY (SELECT COUNT(*) FROM task o WHERE o.assignee = a.id AND o.status = 'open'),"
        " a.id) AS rn, COUNT(*) OVER (PARTITION BY a.store) AS cnt"
        f" FROM advisor a WHERE a.active AND a.store {stores}),"
        " orphans AS (SELECT t.id, t.store, ROW_NUMBER() OVER (PARTITION BY t.store"
        " ORDER BY t.due_on, t.id) AS rn FROM task t"
        f" WHERE t.status = 'open' AND t.assignee IS NULL AND t.store {stores})"
        " UPDATE task SET assignee = x.advisor, updated_at = {} FROM ("
        " SELECT o.id, l.id AS advisor FROM orphans o JOIN loads l"
        " ON l.store = o.store AND l.rn = ((o.rn - 1) % l.cnt) + 1) AS x"
        " WHERE task.id = x.id RETURNING task.id, task.assignee, task.kind, task.reason",
        *store_args,
        *store_args,
        now,
    )
    await write_history(assigned, "open", "open", "assigned", now)
    await events.tasks_assigned(assigned)
    return len(assigned)


# --- from events: purchases, registrations, an advisor leaving ---------------


async def store_todays(store_ids: Iterable[int]) -> dict[int, date]:
    """Each store's own today: a task is never made already lapsed there."""
    cond, args = in_list(sorted(set(store_ids)), "int")
    rows = await fetch(f"SELECT id, timezone FROM store WHERE id {cond}", *args)
    return {r["id"]: clock.today(clock.zone(r["timezone"])) for r in rows}


async def on_members_joined(joined: list[MemberJoined]) -> None:
    rules = await load_rules()
    welcome = rules.get("welcome")
    if welcome is None or not welcome.enabled:
        return
    today = await store_todays(j.store_id for j in joined)
    rows = []
    for j in joined:
        if j.do_not_contact:
            continue
        due, expires = welcome.window(j.joined_on)
        if expires < today[j.store_id]:
            continue  # registered long ago (a back-filled history): nothing to do now
        rows.append(
            (
                "welcome",
                j.member_id,
                "",
                "新会员欢迎",
                welcome.script,
                j.joined_on,
                due,
                expires,
                welcome.priority,
                f"member:{j.member_id}",
                f"welcome:{j.member_id}",
            )
        )
    await insert_task_rows(rows, RunReport())


async def on_purchases(recorded: list[PurchaseRecorded]) -> None:
    """In the purchase's transaction: any purchase ends the member's open reactivate,
    every purchase day gets its followup_3d, and each category with a known supply
    gets a replenish that supersedes the older one."""
    rules = await load_rules()
    report = RunReport()
    members = sorted({p.member_id for p in recorded})
    cond, args = in_list(members, "bigint")
    await transition(f"kind = 'reactivate' AND member {cond}", args, "cancelled", "purchased")

    # An old receipt sent late must not raise a task that has already lapsed.
    today = await store_todays(p.store_id for p in recorded)
    rows: list[tuple[Any, ...]] = []
    followup = rules.get("followup_3d")
    if followup is not None and followup.enabled:
        for p in recorded:
            due, expires = followup.window(p.purchased_on)
            if expires >= today[p.store_id]:
                rows.append(
                    (
                        "followup_3d",
                        p.member_id,
                        "",
                        "购买后回访",
                        followup.script,
                        p.purchased_on,
                        due,
                        expires,
                        followup.priority,
                        f"purchase:{p.purchase_id}",
                        f"followup_3d:{p.member_id}:{p.purchased_on}",
                    )
                )
    replenish = rules.get("replenish")
    if replenish is not None and replenish.enabled:
        rows += await _replenish_rows(recorded, replenish, today)
    await insert_task_rows(rows, report)
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


async def _replenish_rows(
    recorded: list[PurchaseRecorded], rule: Rule, today: dict[int, date]
) -> list[tuple[Any, ...]]:
    products = {p for r in recorded for p, _ in r.lines}
    cond, args = in_list(sorted(products), "int")
    info = {
        row["id"]: (row["category"], row["days_of_supply"])
        for row in await fetch(
            f"SELECT id, category, days_of_supply FROM product WHERE id {cond}"
            " AND days_of_supply IS NOT NULL",
            *args,
        )
    }
    if not info:
        return []
    # (member, category) -> purchase day -> units and label days of supply
    bought: dict[tuple[int, str], dict[date, list[int]]] = defaultdict(dict)
    latest: dict[tuple[int, str], PurchaseRecorded] = {}
    for r in recorded:
        for product, _ in r.lines:
            if product in info:
                key = (r.member_id, info[product][0])
                if key not in latest or latest[key].purchased_at < r.purchased_at:
                    latest[key] = r
    history = await _categorywrite_history(sorted({m for m, _ in latest}))
    for (member, category, day), (units, label_days) in history.items():
        bought[(member, category)][day] = [units, label_days]
    rows = []
    for (member, category), purchase in latest.items():
        days = bought[(member, category)]
        units, label_days = days.get(purchase.purchased_on, [0, 0])
        if units <= 0:
            continue
        per_unit = _own_days_per_unit(days) or label_days / units
        lo, hi = OWN_RATE_CLAMP
        label_per_unit = label_days / units
        per_unit = min(max(per_unit, label_per_unit * lo), label_per_unit * hi)
        supply_days = round(per_unit * units)
        if supply_days > MAX_SUPPLY_DAYS:
            continue  # a stock-up for over a year: nothing to follow up this year
        run_out = purchase.purchased_on + timedelta(days=supply_days)
        due, expires = rule.window(run_out)
        if expires < today[purchase.store_id]:
            continue
        name = CATEGORY_NAMES.get(category, category)
        rows.append(
            (
                "replenish",
                member,
                category,
                f"{name}预计{run_out.month}月{run_out.day}日用完",
                rule.script,
                run_out,
                due,
                expires,
                rule.priority,
                f"purchase:{purchase.purchase_id}",
                # By purchase: a second purchase the same day makes a later run-out,
                # which then supersedes the first day's task.
                f"replenish:{member}:{category}:{purchase.purchase_id}",
            )
        )
    return rows


async def _categorywrite_history(
    members: list[int],
) -> dict[tuple[int, str, date], tuple[int, int]]:
    """Per member, category and day: units bought and the label's total days of supply."""
    cond, args = in_list(members, "bigint")
    rows = await fetch(
        "SELECT p.member, pr.category, p.purchased_on, SUM(l.quantity) AS units,"
        " SUM(l.quantity * pr.days_of_supply) AS label_days"
        " FROM purchase p JOIN purchase_line l ON l.purchase = p.id"
        " JOIN product pr ON pr.id = l.product"
        f" WHERE p.member {cond} AND pr.days_of_supply IS NOT NULL"
        " GROUP BY p.member, pr.category, p.purchased_on",
        *args,
    )
    return {
        (r["member"], r["category"], clock.as_date(r["purchased_on"])): (
            int(r["units"]),
            int(r["label_days"]),
        )
        for r in rows
    }


def _own_days_per_unit(days: dict[date, list[int]]) -> float | None:
    """The member's own days per unit, from the gaps between their purchases of a
    category: needs three purchases; the median shrugs off one odd gap."""
    ordered = sorted(days.items())
    if len(ordered) < 3:
        return None
    rates = [
        (later - earlier).days / units
        for (earlier, (units, _)), (later, _) in pairwise(ordered)
        if units > 0
    ]
    recent = rates[-6:]
    return statistics.median(recent) if recent else None


async def on_advisor_left(left: list[AdvisorLeft]) -> None:
    """An advisor left (or moved store): their members and open tasks at the stores
    they no longer serve go to those stores' other active advisors, least loaded first."""
    for event in left:
        members = await fetch(
            "SELECT DISTINCT home_store FROM member WHERE owning_advisor = {}"
            " AND (NOT {} OR home_store <> {})",
            event.advisor_id,
            event.active,
            event.store_id,
        )
        stores = [row["home_store"] for row in members]
        if stores:
            await _deal_members(event, stores)
        await _hand_over_tasks(event)


async def _deal_members(event: AdvisorLeft, stores: list[int]) -> None:
    cond, args = in_list(stores, "int")
    await fetch(
        "WITH loads AS ("
        " SELECT a.id, a.store, ROW_NUMBER() OVER (PARTITION BY a.store"
        " ORDER BY COALESCE(o.n, 0), a.id) AS rn, COUNT(*) OVER (PARTITION BY a.store) AS cnt"
        " FROM advisor a LEFT JOIN (SELECT owning_advisor, COUNT(*) AS n FROM member"
        f" WHERE home_store {cond} GROUP BY owning_advisor) o ON o.owning_advisor = a.id"
        f" WHERE a.active AND a.id <> {{}} AND a.store {cond}),"
        " orphans AS (SELECT m.id, m.home_store, ROW_NUMBER() OVER (PARTITION BY m.home_store"
        " ORDER BY m.id) AS rn FROM member m WHERE m.owning_advisor = {}"
        f" AND m.home_store {cond})"
        " UPDATE member SET owning_advisor = x.advisor FROM ("
        " SELECT o.id, l.id AS advisor FROM orphans o JOIN loads l"
        " ON l.store = o.home_store AND l.rn = ((o.rn - 1) % l.cnt) + 1) AS x"
        " WHERE member.id = x.id",
        *args,
        event.advisor_id,
        *args,
        event.advisor_id,
        *args,
    )


async def _hand_over_tasks(event: AdvisorLeft) -> None:
    """Open tasks follow their member's new owning advisor where that advisor is
    active at the member's store; the rest are dealt out."""
    stale = "task.assignee = {} AND (NOT {} OR task.store <> {})"
    now = clock.now()
    moved = await fetch(
        "UPDATE task SET assignee = (SELECT " + OWNER_IF_ACTIVE + " FROM member m"
        " LEFT JOIN advisor a ON a.id = m.owning_advisor WHERE m.id = task.member),"
        f" updated_at = {{}} WHERE status = 'open' AND {stale}"
        " RETURNING id, store, assignee, kind, reason",
        now,
        event.advisor_id,
        event.active,
        event.store_id,
    )
    await write_history(moved, "open", "open", "reassigned", now)
    await events.tasks_assigned(moved)
    await assign_unassigned(sorted({r["store"] for r in moved if r["assignee"] is None}))


# --- the daily run -----------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def births_turning(months: int, on: date) -> tuple[date, date] | None:
    """The range of birth dates of babies who turn ``months`` old on ``on``
    (a baby born on the 31st turns a month old on the 30th of a 30-day month)."""
    index = on.year * 12 + on.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last_of_birth_month = calendar.monthrange(year, month)[1]
    if on.day == calendar.monthrange(on.year, on.month)[1]:
        if on.day > last_of_birth_month:
            return None
        return date(year, month, on.day), date(year, month, last_of_birth_month)
    if on.day > last_of_birth_month:
        return None
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


RANGE_ROW = [
    ("birth_date", "date"),
    ("anchor_on", "date"),
    ("due_on", "date"),
    ("expires_on", "date"),
    ("months", "int"),
]


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
        f"{TASK_INSERT} SELECT {param('text')}, m.id, m.home_store, {OWNER_IF_ACTIVE},"
        f" CAST(r.months AS TEXT), {reason}, {param('text')}, r.anchor_on, r.due_on,"
        f" r.expires_on, {param('int')}, 'open', 'baby:' || b.id,"
        f" {param('text')} || b.id || ':' || r.months,"
        f" {param('timestamptz')}, {param('timestamptz')}"
        f" FROM ({source}) AS r JOIN baby b ON b.birth_date = r.birth_date"
        " JOIN member m ON m.id = b.member JOIN store s ON s.id = m.home_store"
        " LEFT JOIN advisor a ON a.id = m.owning_advisor"
        f" WHERE s.timezone = {param('text')} AND NOT m.do_not_contact {extra}"
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


async def run_daily(day: date | None = None, timezones: Sequence[str] | None = None) -> RunReport:
    """The daily job: expire lapsed tasks, then raise the calendar's follow-ups, for
    every time zone that has stores (or the ones given). ``day`` defaults to each
    zone's own today. Safe to run twice, or from two processes at once."""
    if timezones is None:
        timezones = [r["timezone"] for r in await fetch("SELECT DISTINCT timezone FROM store")]
    report = RunReport()
    for timezone in timezones:
        local_day = day or clock.today(clock.zone(timezone))
        zone = await in_write_transaction(partial(_run_zone, local_day, timezone))
        for mine, theirs in (
            (report.created, zone.created),
            (report.expired, zone.expired),
            (report.superseded, zone.superseded),
        ):
            for kind, n in theirs.items():
                mine[kind] += n
        for step, seconds in zone.seconds.items():
            report.seconds[step] += seconds
    return report


async def _run_zone(day: date, timezone: str) -> RunReport:
    report = RunReport()
    rules = await load_rules()

    async def step(name: str, work: Awaitable[int]) -> None:
        started = time.perf_counter()
        report.created[name] += await work
        report.seconds[name] += time.perf_counter() - started

    started = time.perf_counter()
    in_zone = "store IN (SELECT id FROM store WHERE timezone = {})"
    report.count(
        report.expired,
        await transition(f"expires_on < {{}} AND {in_zone}", [day, timezone], "expired", "expired"),
    )
    report.seconds["expire"] += time.perf_counter() - started
    stage_up = rules.get("stage_up")
    if stage_up is not None and stage_up.enabled:
        # r.months is 6, 12 or 36; the member must still be on the stage below.
        lower = " ".join(f"WHEN {m} THEN {s}" for m, s in STAGE_BOUNDARIES.items())
        await step(
            "stage_up",
            _insert_from_babies(
                "stage_up",
                stage_up,
                day,
                timezone,
                STAGE_BOUNDARIES,
                f"AND m.last_formula_stage = CASE r.months {lower} END",
                "'宝宝满' || r.months || '个月,准备转段'",
            ),
        )
    milestone = rules.get("milestone")
    if milestone is not None and milestone.enabled:
        await step(
            "milestone",
            _insert_from_babies(
                "milestone",
                milestone,
                day,
                timezone,
                milestone.params.get("ages_months", []),
                "",
                "'宝宝满' || r.months || '个月'",
            ),
        )
    reactivate = rules.get("reactivate")
    if reactivate is not None and reactivate.enabled:
        await step("reactivate", _insert_reactivate(reactivate, day, timezone))
    await step("campaign", _insert_campaigns(rules.get("campaign"), day, timezone))
    stores = await fetch("SELECT id FROM store WHERE timezone = {}", timezone)
    await assign_unassigned([s["id"] for s in stores])
    start, end = clock.day_bounds(day, clock.zone(timezone))
    report.count(
        report.superseded,
        await fetch(
            "SELECT t.kind FROM task_event e JOIN task t ON t.id = e.task"
            " JOIN store s ON s.id = t.store WHERE e.reason = 'superseded'"
            " AND e.at >= {} AND e.at < {} AND s.timezone = {}",
            start,
            end,
            timezone,
        ),
    )
    return report


async def _insert_made(rule: Rule, sql: str, *args: Any) -> int:
    """A daily-run INSERT of tasks, counted. For a kind HQ marks urgent the tasks made
    are reported too, so that their advisors hear of them (at 08:00: the run is at
    night); for the others nothing is shipped back."""
    if not rule.params.get("urgent"):
        return await insert_count(sql, *args)
    made = await fetch(f"{sql} RETURNING id, kind, assignee, reason", *args)
    await events.tasks_assigned(made)
    return len(made)


async def _insert_reactivate(rule: Rule, day: date, timezone: str) -> int:
    anchors = [(a, *rule.window(a)) for a in rule.anchors_open_on(day)]
    source, args = rows_source(
        [("anchor_on", "date"), ("due_on", "date"), ("expires_on", "date")], anchors
    )
    now = clock.now()
    return await _insert_made(
        rule,
        f"{TASK_INSERT} SELECT 'reactivate', m.id, m.home_store, {OWNER_IF_ACTIVE}, '',"
        f" '已' || {param('int')} || '天未购买', {param('text')}, r.anchor_on, r.due_on,"
        f" r.expires_on, {param('int')}, 'open', 'member:' || m.id,"
        " 'reactivate:' || m.id || ':' || r.anchor_on,"
        f" {param('timestamptz')}, {param('timestamptz')}"
        f" FROM ({source}) AS r JOIN member m ON m.last_purchase_on = r.anchor_on"
        " JOIN store s ON s.id = m.home_store LEFT JOIN advisor a ON a.id = m.owning_advisor"
        f" WHERE s.timezone = {param('text')} AND NOT m.do_not_contact"
        " ON CONFLICT (dedupe_key) DO NOTHING",
        rule.due_offset_days,
        rule.script,
        rule.priority,
        now,
        now,
        *args,
        timezone,
    )


async def _insert_campaigns(rule: Rule | None, day: date, timezone: str) -> int:
    priority = rule.priority if rule else 4
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
    """One task per member of the campaign's segment, due at its start (or today,
    for a member who joined the segment since) and expiring at its end."""
    segment = campaign["segment"]
    if not isinstance(segment, dict):
        segment = json.loads(segment or "{}")
    filters: list[str] = []
    args: list[Any] = []
    if segment.get("region"):
        filters.append("s.region = {}")
        args.append(segment["region"])
    if segment.get("store_codes"):
        cond, more = in_list(segment["store_codes"], "text")
        filters.append(f"s.code {cond}")
        args += more
    ages = segment.get("baby_age_months")
    if ages:
        youngest, oldest = ages
        # Aged youngest..oldest whole months on the day: born after the day `oldest+1`
        # months back and no later than `youngest` months back.
        filters.append(
            "EXISTS (SELECT 1 FROM baby b WHERE b.member = m.id"
            " AND b.birth_date > {} AND b.birth_date <= {})"
        )
        args += [add_months(day, -(oldest + 1)), add_months(day, -youngest)]
    if segment.get("last_purchase_category"):
        filters.append(
            "EXISTS (SELECT 1 FROM purchase p JOIN purchase_line l ON l.purchase = p.id"
            " JOIN product pr ON pr.id = l.product WHERE p.member = m.id"
            " AND p.purchased_at = m.last_purchased_at AND pr.category = {})"
        )
        args.append(segment["last_purchase_category"])
    where = "".join(f" AND {f}" for f in filters)
    starts_on = clock.as_date(campaign["starts_on"])
    now = clock.now()
    return await insert_count(
        f"{TASK_INSERT} SELECT 'campaign', m.id, m.home_store, {OWNER_IF_ACTIVE},"
        f" {param('text')}, {param('text')}, {param('text')}, {param('date')}, {param('date')},"
        f" {param('date')}, {param('int')}, 'open', {param('text')},"
        f" {param('text')} || m.id, {param('timestamptz')}, {param('timestamptz')}"
        " FROM member m JOIN store s ON s.id = m.home_store"
        " LEFT JOIN advisor a ON a.id = m.owning_advisor"
        f" WHERE s.timezone = {{}} AND NOT m.do_not_contact{where}"
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


async def create_campaign(
    name: str, starts_on: date, ends_on: date, segment: dict[str, Any], script: str
) -> tuple[int, int]:
    """A campaign over a segment; members in it get their task from the first daily
    run inside the window, or at once when the window has begun. Returns the
    campaign's id and the tasks made now."""
    if ends_on < starts_on:
        raise InvalidInput.on("ends_on", "is before starts_on")
    ages = segment.get("baby_age_months")
    if ages and ages[0] > ages[1]:
        raise InvalidInput.on("segment.baby_age_months", "give [youngest, oldest]")
    codes = segment.get("store_codes") or []
    if codes:
        cond, args = in_list(codes, "text")
        known = {r["code"] for r in await fetch(f"SELECT code FROM store WHERE code {cond}", *args)}
        missing = sorted(set(codes) - known)
        if missing:
            raise InvalidInput.on("segment.store_codes", f"no store {', '.join(missing[:10])}")
    rules = await load_rules()
    rule = rules.get("campaign")
    priority = rule.priority if rule else 4

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
        made = 0
        for zone in await fetch("SELECT DISTINCT timezone FROM store"):
            today = clock.today(clock.zone(zone["timezone"]))
            if starts_on <= today <= ends_on:
                made += await insert_campaign_tasks(campaign, today, zone["timezone"], priority)
        if made:
            stores = await fetch(
                "SELECT DISTINCT store FROM task WHERE assignee IS NULL AND status = 'open'"
            )
            await assign_unassigned([s["store"] for s in stores])
        return int(campaign["id"]), made

    return await in_write_transaction(work)
