"""The demo chain's past, lived day by day so that every page has real figures: each
day's run (stage-ups, quiet members, campaigns, expiries, activity snapshots) before
that day's receipts, then the advisors' calls on most of what was due, converting
some into purchases, and HQ's monthly targets with one owner's split among advisors.
Everything goes through the same services the API uses."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from advisor_api import demo_points
from advisor_api.jobs import daily_job
from core import clock
from core.periods import add_months, month_key
from incentives import targets
from incentives.schemas import AdvisorShareIn, TargetIn
from members import registration, tills
from members.policy import PointsRule
from members.schemas import MemberRegistration, PurchaseIn
from members.stores import store_by_code
from tasks.campaigns import create_campaign
from tasks.outcomes import record_outcome
from tasks.queries import assigned_tasks_due
from tasks.schemas import OutcomeIn

T = TypeVar("T")

# What an advisor's call came to, and how often (the rest of the tasks go uncalled).
RESULTS = (
    ("reached", 30),
    ("will_buy", 14),
    ("no_answer", 22),
    ("declined", 8),
    ("purchased", 4),
    ("wrong_number", 1),
)
CALLED_SHARE = 0.7
CHANNELS = ("phone", "phone", "wechat", "visit")
# Store targets per month: (new members, points), a little above what stores do.
STORE_TARGET = (8, 14_000)


async def live_history(
    joins: dict[str, list[MemberRegistration]],
    receipts: dict[str, list[PurchaseIn]],
    today: date,
    rng: random.Random,
    progress: Callable[[str], None] = lambda _: None,
    each_day: Callable[[date], Awaitable[None]] | None = None,
) -> dict[str, int]:
    """Replay members joining and their receipts (by store code) day by day up to
    yesterday, each day at its own time: the daily run after midnight, HQ's
    campaigns a few days before they start, members joining, the advisors' calls on
    what fell due, then the day's receipts. Then HQ's targets and an owner's split."""
    joined_on = _by_day(joins, lambda m: m.registered_at)
    by_day = _by_day(receipts, lambda r: r.purchased_at)
    stores = {code: await store_by_code(code) for code in receipts}
    rule = PointsRule()
    await demo_points.promotions(today)
    day, sold, calls, till = min(joined_on), 0, 0, [0, 0]
    while day < today:
        with clock.living_at(_at(day, time(0, 5))):
            await daily_job(day)
        with clock.living_at(_at(day, time(10, 30))):
            await _campaigns_announced(day, today)
            for code, members in sorted(joined_on.get(day, {}).items()):
                for member in members:
                    await registration.register_member(stores[code], member)
        with clock.living_at(_at(day, time(19, 30))):
            calls += await _calls(day, rng)
        with clock.living_at(_at(day, time(21, 30))):
            for code, batch in sorted(by_day.get(day, {}).items()):
                await tills.ingest_purchases(stores[code], batch, rule)
                sold += len(batch)
        with clock.living_at(_at(day, time(21, 50))):
            for code, batch in sorted(by_day.get(day, {}).items()):
                spent, back = await demo_points.at_the_till(
                    stores[code], batch, _at(day, time(21, 40)), rng
                )
                till[0], till[1] = till[0] + spent, till[1] + back
        if each_day is not None:  # the day's O2O orders (each step at its own time)
            await each_day(day)
        if day.day == 1:
            progress(f"demo history: {day:%Y-%m} ({sold} receipts, {calls} calls so far)")
        day += timedelta(days=1)
    saved = await _targets(today)
    return {
        "receipts": sold,
        "calls": calls,
        "targets": saved,
        "redemptions": till[0],
        "returns": till[1],
    }


def _by_day(
    items: dict[str, list[T]], when: Callable[[T], datetime | None]
) -> dict[date, dict[str, list[T]]]:
    """Items by store code, regrouped by the store-local day they happen on."""
    zone = clock.zone(clock.DEFAULT_TIMEZONE)
    found: dict[date, dict[str, list[T]]] = defaultdict(lambda: defaultdict(list))
    for code, store_items in items.items():
        for item in store_items:
            instant = when(item)
            assert instant is not None
            found[clock.local_date(instant, zone)][code].append(item)
    return found


def _at(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=clock.zone(clock.DEFAULT_TIMEZONE))


# HQ's seasonal care (季节关怀): (days before today it starts, days it runs, name,
# segment, script). One is over; one runs now.
CAMPAIGNS = (
    (
        50,
        28,
        "秋季转段关怀",
        {"baby_age_months": [5, 13]},
        "{name}您好,宝宝快到转段的月龄了,门店有转段试用装,欢迎来店领取。",
    ),
    (
        4,
        16,
        "冬季益生菌关怀",
        {"region": "华南"},
        "{name}您好,天冷了,宝宝的肠道也要照顾好,益生菌冲剂本周会员双倍积分。",
    ),
)
ANNOUNCED_DAYS_AHEAD = 3


async def _campaigns_announced(day: date, today: date) -> None:
    for before, days, name, segment, script in CAMPAIGNS:
        starts_on = today - timedelta(days=before)
        if day == starts_on - timedelta(days=ANNOUNCED_DAYS_AHEAD):
            await create_campaign(
                name, starts_on, starts_on + timedelta(days=days), segment, script
            )


def _pick(rng: random.Random) -> str:
    roll = rng.randrange(sum(w for _, w in RESULTS))
    for result, weight in RESULTS:
        if roll < weight:
            return result
        roll -= weight
    return RESULTS[0][0]


async def _calls(day: date, rng: random.Random) -> int:
    """Most tasks due on ``day`` get a call that day, between 9 and 19 o'clock."""
    made = 0
    for task in await assigned_tasks_due(day, day):
        if rng.random() > CALLED_SHARE:
            continue
        first, _ = await record_outcome(
            int(task["assignee"]),
            clock.DEFAULT_TIMEZONE,
            int(task["id"]),
            OutcomeIn(
                client_outcome_id=f"demo-{task['id']}",
                channel=rng.choice(CHANNELS),  # type: ignore[arg-type]
                result=_pick(rng),  # type: ignore[arg-type]
                recorded_at=_at(day, time(rng.randint(9, 18), rng.randint(0, 59))),
            ),
        )
        made += first
    return made


async def _targets(today: date) -> int:
    """Store targets for last month and this one; S0001's owner splits this month's."""
    from advisor_api.demo import STORES, advisor_code

    saved = 0
    for month in (month_key(add_months(today.replace(day=1), -1)), month_key(today)):
        lines: list[tuple[int, Any]] = [
            (n, TargetIn("store", code, *STORE_TARGET))
            for n, (code, *_rest) in enumerate(STORES, start=1)
        ]
        saved += (await targets.save_targets(month, lines, [], "hq")).saved
    s0001 = await store_by_code("S0001")
    await targets.split_store_target(
        s0001.id,
        month_key(today),
        [
            AdvisorShareIn(advisor_code(1), 5, 8_000),
            AdvisorShareIn(advisor_code(2), 3, 6_000),
        ],
        "S0001",
    )
    return saved + 2
