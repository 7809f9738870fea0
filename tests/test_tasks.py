"""The daily list, walked through time: purchases and the daily run make follow-ups,
the advisor sees exactly theirs on the day they are due, and they lapse unworked."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import httpx
import pytest

from core.db import fetch
from members import accounts
from tasks.daily import births_turning, run_daily
from tests.conftest import (
    FORMULA_1,
    FORMULA_2,
    PASSWORD,
    WIPES,
    Shop,
    login,
    make_shop,
    receipt,
    unique_phone,
)

Client = httpx.AsyncClient


async def advisor_login(client: Client, advisor_code: str) -> dict[str, str]:
    phone = unique_phone()
    await accounts.create_user("advisor", phone, PASSWORD, advisor_code=advisor_code)
    return await login(client, phone)


async def join(
    client: Client, shop: Shop, advisor: str, birth: str | None = None, dnc: bool = False
) -> str:
    phone = unique_phone()
    babies = [{"name": "宝宝", "birth_date": birth}] if birth else []
    r = await client.post(
        "/pos/v1/members",
        json={
            "phone": phone,
            "name": "测试妈妈",
            "advisor_code": advisor,
            "babies": babies,
            "registered_at": "2026-01-05T10:00:00+08:00",
            "do_not_contact": dnc,
        },
        headers=shop.pos,
    )
    assert r.status_code == 201, r.text
    return phone


async def buy(
    client: Client,
    shop: Shop,
    phone: str,
    when: str,
    lines: list[tuple[str, int, str]] | None = None,
) -> None:
    r = await client.post(
        "/pos/v1/purchases",
        json=receipt(phone=phone, purchased_at=when, lines=lines or [(FORMULA_1, 1, "358.00")]),
        headers=shop.pos,
    )
    assert r.status_code == 201, r.text


async def today(client: Client, who: dict[str, str], day: str) -> dict[str, Any]:
    r = await client.get("/advisor/v1/today", params={"date": day}, headers=who)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def kinds_for(body: dict[str, Any], phone: str) -> list[str]:
    return [t["kind"] for c in body["cards"] if c["member"]["phone"] == phone for t in c["tasks"]]


async def task_statuses(phone: str) -> dict[str, tuple[str, str | None]]:
    rows = await fetch(
        "SELECT t.kind, t.status, t.status_reason, t.due_on FROM task t"
        " JOIN member m ON m.id = t.member WHERE m.phone = {} ORDER BY t.id",
        phone,
    )
    return {f"{r['kind']}@{r['due_on']}": (r["status"], r["status_reason"]) for r in rows}


@pytest.fixture
async def advisor(client: Client, shop: Shop) -> dict[str, str]:
    return await advisor_login(client, shop.advisors[0])


async def test_followup_3d_appears_on_day_3_and_expires_unworked_on_day_7(
    client: Client, shop: Shop, advisor: dict[str, str]
) -> None:
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-11-20T09:30:00+08:00")
    assert "followup_3d" not in kinds_for(await today(client, advisor, "2026-11-22"), phone)
    day3 = await today(client, advisor, "2026-11-23")
    assert "followup_3d" in kinds_for(day3, phone)
    card = next(c for c in day3["cards"] if c["member"]["phone"] == phone)
    assert card["member"]["points_balance"] == 358
    assert card["member"]["last_purchase_at"].startswith("2026-11-20T01:30:00")
    followup = next(t for t in card["tasks"] if t["kind"] == "followup_3d")
    assert followup["due_date"] == "2026-11-23" and followup["expires_on"] == "2026-11-26"
    assert "测试店" in followup["script"] and "{store}" not in followup["script"]
    assert "followup_3d" in kinds_for(await today(client, advisor, "2026-11-26"), phone)

    await run_daily(date(2026, 11, 27))
    assert "followup_3d" not in kinds_for(await today(client, advisor, "2026-11-27"), phone)
    assert (await task_statuses(phone))["followup_3d@2026-11-23"] == ("expired", "expired")


async def test_replenish_comes_three_days_before_run_out_and_a_new_purchase_supersedes_it(
    client: Client, shop: Shop, advisor: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-11-20T10:00:00+08:00")  # one can: 12 days, out on 12-02
    assert "replenish" not in kinds_for(await today(client, advisor, "2026-11-28"), phone)
    assert "replenish" in kinds_for(await today(client, advisor, "2026-11-29"), phone)

    monkeypatch.setenv("TIANTIAN_NOW", "2026-11-29T15:00:00+08:00")
    await buy(client, shop, phone, "2026-11-29T14:00:00+08:00", [(FORMULA_1, 2, "716.00")])
    statuses = await task_statuses(phone)
    assert statuses["replenish@2026-11-29"] == ("cancelled", "superseded")
    # Two cans at the label's 12 days each: out on 12-23, due on 12-20.
    assert statuses["replenish@2026-12-20"] == ("open", None)
    assert "replenish" not in kinds_for(await today(client, advisor, "2026-11-29"), phone)


async def test_replenish_follows_the_members_own_rate_after_three_purchases(
    client: Client, shop: Shop, advisor: dict[str, str]
) -> None:
    phone = await join(client, shop, shop.advisors[0])
    # A can every 20 days against a label of 12: the member's own rate is 20.
    for when in (
        "2026-10-01T10:00:00+08:00",
        "2026-10-21T10:00:00+08:00",
        "2026-11-10T10:00:00+08:00",
    ):
        await buy(client, shop, phone, when)
    statuses = await task_statuses(phone)
    assert statuses["replenish@2026-11-27"] == ("open", None)  # out 11-30, due 3 days before
    assert [k for k, v in statuses.items() if k.startswith("replenish") and v[0] == "open"] == [
        "replenish@2026-11-27"
    ]


async def test_products_without_a_supply_make_no_replenish(client: Client, shop: Shop) -> None:
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-11-20T10:00:00+08:00", [(WIPES, 3, "30.00")])
    assert not [k for k in await task_statuses(phone) if k.startswith("replenish")]


async def test_stage_up_a_week_before_six_months_only_for_members_still_on_stage_1(
    client: Client, shop: Shop, advisor: dict[str, str]
) -> None:
    on_stage_1 = await join(client, shop, shop.advisors[0], birth="2026-06-03")
    await buy(client, shop, on_stage_1, "2026-11-15T10:00:00+08:00")
    moved_on = await join(client, shop, shop.advisors[0], birth="2026-06-03")
    await buy(client, shop, moved_on, "2026-11-15T10:00:00+08:00", [(FORMULA_2, 1, "338.00")])

    await run_daily(date(2026, 11, 25))
    assert "stage_up" not in kinds_for(await today(client, advisor, "2026-11-25"), on_stage_1)
    report = await run_daily(date(2026, 11, 26))
    assert report.created["stage_up"] >= 1
    day = await today(client, advisor, "2026-11-26")
    assert "stage_up" in kinds_for(day, on_stage_1)
    assert "stage_up" not in kinds_for(day, moved_on)
    task = next(
        t
        for c in day["cards"]
        if c["member"]["phone"] == on_stage_1
        for t in c["tasks"]
        if t["kind"] == "stage_up"
    )
    assert (task["due_date"], task["expires_on"]) == ("2026-11-26", "2026-12-17")
    assert "6个月" in task["script"] and "2段" in task["script"]
    # One card: the overdue replenish (due 11-24) first, then the stage-up, which
    # outranks the follow-up due the same day.
    card = next(c for c in day["cards"] if c["member"]["phone"] == on_stage_1)
    assert [(t["kind"], t["overdue"]) for t in card["tasks"]][:2] == [
        ("replenish", True),
        ("stage_up", False),
    ]


async def test_milestone_on_the_day_a_baby_turns_four_months(
    client: Client, shop: Shop, advisor: dict[str, str]
) -> None:
    phone = await join(client, shop, shop.advisors[0], birth="2026-07-31")
    await run_daily(date(2026, 11, 29))
    assert "milestone" not in kinds_for(await today(client, advisor, "2026-11-29"), phone)
    await run_daily(date(2026, 11, 30))  # November has no 31st: the 30th it is
    assert "milestone" in kinds_for(await today(client, advisor, "2026-11-30"), phone)


async def test_reactivate_on_day_45_without_a_purchase_and_a_purchase_cancels_it(
    client: Client, shop: Shop, advisor: dict[str, str]
) -> None:
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-10-05T10:00:00+08:00")
    await run_daily(date(2026, 11, 18))
    assert "reactivate" not in kinds_for(await today(client, advisor, "2026-11-18"), phone)
    await run_daily(date(2026, 11, 19))
    assert "reactivate" in kinds_for(await today(client, advisor, "2026-11-19"), phone)
    await buy(client, shop, phone, "2026-11-20T10:00:00+08:00")
    assert (await task_statuses(phone))["reactivate@2026-11-19"] == ("cancelled", "purchased")


async def test_a_campaign_reaches_exactly_its_segment(
    client: Client, shop: Shop, hq: dict[str, str], advisor: dict[str, str]
) -> None:
    in_segment = await join(client, shop, shop.advisors[0], birth="2025-11-01")  # 12 months
    too_young = await join(client, shop, shop.advisors[0], birth="2026-09-01")  # 2 months
    no_baby = await join(client, shop, shop.advisors[0])
    other = await make_shop()
    elsewhere = await join(client, other, other.advisors[0], birth="2025-11-01")
    r = await client.post(
        "/hq/v1/campaigns",
        json={
            "name": "春季流感关怀",
            "starts_on": "2026-11-20",
            "ends_on": "2026-12-10",
            "segment": {"store_codes": [shop.code], "baby_age_months": [6, 24]},
            "script": "流感季节到了,提醒您注意宝宝保暖。",
        },
        headers=hq,
    )
    assert r.status_code == 201, r.text
    assert r.json()["tasks_created"] == 1
    day = await today(client, advisor, "2026-11-20")
    assert "campaign" in kinds_for(day, in_segment)
    for phone in (too_young, no_baby, elsewhere):
        assert not [k for k in await task_statuses(phone) if k.startswith("campaign")]
    await run_daily(date(2026, 11, 21))
    assert len([k for k in await task_statuses(in_segment) if k.startswith("campaign")]) == 1

    bad = await client.post(
        "/hq/v1/campaigns",
        json={
            "name": "x",
            "starts_on": "2026-12-10",
            "ends_on": "2026-12-01",
            "segment": {},
            "script": "x",
        },
        headers=hq,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "ends_on"


async def test_the_daily_run_twice_or_twice_at_once_makes_no_duplicate(
    client: Client, shop: Shop
) -> None:
    for n in range(3):
        phone = await join(client, shop, shop.advisors[n % 2], birth="2026-06-04")
        await buy(client, shop, phone, "2026-10-13T10:00:00+08:00")
    first, second = await asyncio.gather(
        run_daily(date(2026, 11, 27)), run_daily(date(2026, 11, 27))
    )
    third = await run_daily(date(2026, 11, 27))
    for kind in ("stage_up", "reactivate"):
        assert first.created[kind] + second.created[kind] >= 3
        assert third.created[kind] == 0
    keys = await fetch(
        "SELECT dedupe_key, COUNT(*) AS n FROM task GROUP BY dedupe_key HAVING COUNT(*) > 1"
    )
    assert keys == []


async def test_an_advisor_sees_only_their_own_tasks(
    client: Client, shop: Shop, hq: dict[str, str]
) -> None:
    mine = await join(client, shop, shop.advisors[0])
    theirs = await join(client, shop, shop.advisors[1])
    for phone in (mine, theirs):
        await buy(client, shop, phone, "2026-11-20T10:00:00+08:00")
    first = await advisor_login(client, shop.advisors[0])
    second = await advisor_login(client, shop.advisors[1])
    day_first = await today(client, first, "2026-11-23")
    day_second = await today(client, second, "2026-11-23")
    assert kinds_for(day_first, mine) and not kinds_for(day_first, theirs)
    assert kinds_for(day_second, theirs) and not kinds_for(day_second, mine)
    other = await make_shop()
    stranger = await advisor_login(client, other.advisors[0])
    day_stranger = await today(client, stranger, "2026-11-23")
    assert not kinds_for(day_stranger, mine) and not kinds_for(day_stranger, theirs)
    assert (await client.get("/advisor/v1/today", headers=hq)).status_code == 403
    assert (await client.get("/advisor/v1/today")).status_code == 401


async def test_the_list_is_one_card_per_member_most_urgent_first(
    client: Client, shop: Shop, advisor: dict[str, str]
) -> None:
    older = await join(client, shop, shop.advisors[0])
    await buy(client, shop, older, "2026-11-18T10:00:00+08:00")  # followup due 11-21
    newer = await join(client, shop, shop.advisors[0])
    await buy(client, shop, newer, "2026-11-20T10:00:00+08:00")  # followup due 11-23
    day = await today(client, advisor, "2026-11-23")
    phones = [c["member"]["phone"] for c in day["cards"]]
    assert phones.index(older) < phones.index(newer)
    assert len(phones) == len(set(phones))
    card = day["cards"][phones.index(older)]
    assert card["tasks"][0]["overdue"] is True
    assert day["counts"]["overdue"] >= 1 and day["counts"]["due"] >= 2


async def test_do_not_contact_members_get_no_tasks(client: Client, shop: Shop) -> None:
    phone = await join(client, shop, shop.advisors[0], birth="2026-06-03", dnc=True)
    await buy(client, shop, phone, "2026-11-20T10:00:00+08:00")
    await run_daily(date(2026, 11, 26))
    assert await task_statuses(phone) == {}


async def test_deactivating_an_advisor_hands_on_members_and_open_tasks(
    client: Client, shop: Shop, hq: dict[str, str]
) -> None:
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-11-20T10:00:00+08:00")
    leaving = (await client.get(f"/hq/v1/advisors/{shop.advisors[0]}", headers=hq)).json()
    r = await client.put(
        f"/hq/v1/advisors/{shop.advisors[0]}",
        json={
            "name": leaving["name"],
            "phone": leaving["phone"],
            "store_code": shop.code,
            "active": False,
        },
        headers=hq,
    )
    assert r.status_code == 200
    member = (await client.get(f"/pos/v1/members/{phone}", headers=shop.pos)).json()
    assert member["owning_advisor"] == shop.advisors[1]
    successor = await advisor_login(client, shop.advisors[1])
    assert "followup_3d" in kinds_for(await today(client, successor, "2026-11-23"), phone)
    open_elsewhere = await fetch(
        "SELECT COUNT(*) AS n FROM task t JOIN advisor a ON a.id = t.assignee"
        " WHERE a.code = {} AND t.status = 'open'",
        shop.advisors[0],
    )
    assert open_elsewhere[0]["n"] == 0


async def test_a_member_without_advisor_goes_to_the_least_loaded_advisor(
    client: Client, shop: Shop
) -> None:
    busy = await join(client, shop, shop.advisors[0])
    await buy(client, shop, busy, "2026-11-20T10:00:00+08:00")
    orphan = unique_phone()
    await client.post("/pos/v1/members", json={"phone": orphan}, headers=shop.pos)
    rows = await fetch(
        "SELECT a.code FROM task t JOIN member m ON m.id = t.member"
        " JOIN advisor a ON a.id = t.assignee WHERE m.phone = {}",
        orphan,
    )
    assert [r["code"] for r in rows] == [shop.advisors[1]]


async def test_playbook_is_data_hq_can_read_and_change(
    client: Client, shop: Shop, hq: dict[str, str]
) -> None:
    playbook = (await client.get("/hq/v1/playbook", headers=hq)).json()
    kinds = {r["kind"] for r in playbook["rules"]}
    assert {
        "followup_3d",
        "replenish",
        "stage_up",
        "reactivate",
        "milestone",
        "welcome",
        "campaign",
    } <= kinds
    followup = next(r for r in playbook["rules"] if r["kind"] == "followup_3d")
    bad = await client.put(
        "/hq/v1/playbook", json={"rules": [{**followup, "expire_offset_days": 1}]}, headers=hq
    )
    assert (
        bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rules[0].expire_offset_days"
    )
    unknown = await client.put(
        "/hq/v1/playbook", json={"rules": [{**followup, "kind": "astrology"}]}, headers=hq
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "rules[0].kind"
    try:
        ok = await client.put(
            "/hq/v1/playbook", json={"rules": [{**followup, "enabled": False}]}, headers=hq
        )
        assert ok.status_code == 200
        phone = await join(client, shop, shop.advisors[0])
        await buy(client, shop, phone, "2026-11-20T10:00:00+08:00")
        assert not [k for k in await task_statuses(phone) if k.startswith("followup_3d")]
    finally:
        await client.put("/hq/v1/playbook", json={"rules": [followup]}, headers=hq)


def test_births_turning_a_month_old_clamp_to_month_end() -> None:
    assert births_turning(6, date(2026, 12, 3)) == (date(2026, 6, 3), date(2026, 6, 3))
    assert births_turning(1, date(2026, 2, 28)) == (date(2026, 1, 28), date(2026, 1, 31))
    assert births_turning(1, date(2026, 3, 30)) is None  # nobody is born on 2-30
    assert births_turning(1, date(2026, 3, 28)) == (date(2026, 2, 28), date(2026, 2, 28))


async def test_a_card_shows_the_points_about_to_lapse_and_the_kinds_hq_marks_urgent(
    client: Client, shop: Shop, advisor: dict[str, str], hq: dict[str, str]
) -> None:
    policy = (await client.get("/hq/v1/points-policy", headers=hq)).json()
    rules = (await client.get("/hq/v1/playbook", headers=hq)).json()["rules"]
    followup = next(r for r in rules if r["kind"] == "followup_3d")

    async def card() -> dict[str, Any]:
        body = await today(client, advisor, "2026-11-23")
        found: dict[str, Any] = next(c for c in body["cards"] if c["member"]["phone"] == phone)
        return found

    async def set_policy(**change: Any) -> None:
        r = await client.put("/hq/v1/points-policy", json={**policy, **change}, headers=hq)
        assert r.status_code == 200, r.text

    try:
        await set_policy(expiry_months=1, expiry_warning_days=365)  # lots lapse next month
        phone = await join(client, shop, shop.advisors[0])
        await buy(client, shop, phone, "2026-11-20T10:00:00+08:00")
        r = await client.get(f"/pos/v1/members/{phone}", headers=shop.pos)
        lots = r.json()["points_expiring"]  # the till's: every lot with points left
        assert lots and (await card())["member"]["points_expiring"] == lots
        assert [t["urgent"] for t in (await card())["tasks"]] == [False]
        await set_policy(expiry_months=1, expiry_warning_days=1)
        urgent = {**followup, "params": {**followup["params"], "urgent": True}}
        assert (
            await client.put("/hq/v1/playbook", json={"rules": [urgent]}, headers=hq)
        ).is_success
        shown = await card()
        assert shown["member"]["points_expiring"] == []  # none lapses within a day
        assert [t["urgent"] for t in shown["tasks"]] == [True]
    finally:
        await client.put("/hq/v1/playbook", json={"rules": [followup]}, headers=hq)
        await client.put("/hq/v1/points-policy", json=policy, headers=hq)
