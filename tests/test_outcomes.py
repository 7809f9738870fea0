"""Working the list over HTTP: outcomes and their replays, snoozes, do-not-contact,
callbacks, conversion, and a phone replaying a three-day queue in any order."""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

import httpx
import pytest

from core.db import fetch
from tasks.daily import run_daily
from tests.conftest import FORMULA_1, Shop, make_shop
from tests.test_tasks import advisor_login, buy, join, kinds_for, task_statuses, today

Client = httpx.AsyncClient


async def open_tasks(phone: str, kind: str | None = None) -> list[int]:
    rows = await fetch(
        "SELECT t.id, t.kind FROM task t JOIN member m ON m.id = t.member"
        " WHERE m.phone = {} AND t.status = 'open' ORDER BY t.id",
        phone,
    )
    return [r["id"] for r in rows if kind is None or r["kind"] == kind]


def outcome(
    result: str = "reached", at: str = "2026-11-20T11:00:00+08:00", **extra: Any
) -> dict[str, Any]:
    return {
        "client_outcome_id": str(uuid.uuid4()),
        "channel": "phone",
        "result": result,
        "recorded_at": at,
        **extra,
    }


async def post_outcome(
    client: Client, who: dict[str, str], task_id: int, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"/advisor/v1/tasks/{task_id}/outcome", json=body, headers=who)


@pytest.fixture
async def worked(client: Client, shop: Shop) -> tuple[dict[str, str], str, int]:
    """An advisor, a member of theirs who bought on 11-17, and the followup due 11-20."""
    who = await advisor_login(client, shop.advisors[0])
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-11-17T10:00:00+08:00")
    (followup,) = await open_tasks(phone, "followup_3d")
    return who, phone, followup


async def test_an_outcome_completes_the_task_and_a_replay_changes_nothing(
    client: Client, shop: Shop, worked: tuple[dict[str, str], str, int]
) -> None:
    who, phone, task = worked
    body = outcome(note="宝宝喝得很好")
    first = await post_outcome(client, who, task, body)
    assert first.status_code == 201, first.text
    assert first.json() == {"task_id": task, "status": "done", "applied": True}
    replay = await post_outcome(client, who, task, body)
    assert replay.status_code == 200 and replay.json() == first.json()
    changed = await post_outcome(client, who, task, {**body, "result": "declined"})
    assert changed.status_code == 409
    another = await post_outcome(client, who, task, outcome("no_answer"))
    assert another.status_code == 409
    assert "followup_3d" not in kinds_for(await today(client, who, "2026-11-20"), phone)
    rows = await fetch("SELECT COUNT(*) AS n FROM outcome WHERE task = {}", task)
    assert rows[0]["n"] == 1


async def test_another_advisors_task_is_not_found(
    client: Client, shop: Shop, worked: tuple[dict[str, str], str, int]
) -> None:
    _, _, task = worked
    colleague = await advisor_login(client, shop.advisors[1])
    r = await post_outcome(client, colleague, task, outcome())
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    stranger = await advisor_login(client, (await make_shop()).advisors[0])
    assert (await post_outcome(client, stranger, task, outcome())).status_code == 404
    assert (await post_outcome(client, colleague, 10**12, outcome())).status_code == 404


async def test_a_call_after_the_task_lapsed_is_kept_but_does_not_revive_it(
    client: Client,
    shop: Shop,
    worked: tuple[dict[str, str], str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    who, phone, task = worked
    monkeypatch.setenv("TIANTIAN_NOW", "2026-11-25T12:00:00+08:00")
    await run_daily(date(2026, 11, 24))  # the followup (valid through 11-23) expires
    late = await post_outcome(client, who, task, outcome(at="2026-11-24T09:00:00+08:00"))
    assert late.status_code == 201
    body = late.json()
    assert body["status"] == "expired" and body["applied"] is False and "expired" in body["detail"]
    assert (await task_statuses(phone))["followup_3d@2026-11-20"] == ("expired", "expired")


async def test_a_call_made_in_time_but_sent_after_expiry_still_counts(
    client: Client,
    shop: Shop,
    worked: tuple[dict[str, str], str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    who, phone, task = worked
    monkeypatch.setenv("TIANTIAN_NOW", "2026-11-25T12:00:00+08:00")
    await run_daily(date(2026, 11, 24))
    r = await post_outcome(client, who, task, outcome(at="2026-11-23T20:00:00+08:00"))
    assert r.status_code == 201 and r.json()["status"] == "done"
    assert (await task_statuses(phone))["followup_3d@2026-11-20"] == ("done", "reached")


async def test_next_contact_on_makes_one_callback_for_that_day(
    client: Client, shop: Shop, worked: tuple[dict[str, str], str, int]
) -> None:
    who, phone, task = worked
    body = outcome("will_buy", next_contact_on="2026-11-22")
    r = await post_outcome(client, who, task, body)
    callback = r.json()["callback_task_id"]
    assert callback is not None
    assert (await post_outcome(client, who, task, body)).json()["callback_task_id"] == callback
    assert "callback" not in kinds_for(await today(client, who, "2026-11-21"), phone)
    day = await today(client, who, "2026-11-22")
    assert "callback" in kinds_for(day, phone)
    bad = await post_outcome(client, who, task, outcome(next_contact_on="2026-11-01"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "next_contact_on"


async def test_do_not_contact_cancels_open_tasks_and_prevents_new_ones(
    client: Client, shop: Shop, worked: tuple[dict[str, str], str, int]
) -> None:
    who, phone, task = worked
    others = [t for t in await open_tasks(phone) if t != task]
    assert others  # the replenish and the welcome
    r = await post_outcome(client, who, task, outcome("do_not_contact"))
    assert r.status_code == 201 and r.json()["status"] == "done"
    assert await open_tasks(phone) == []
    member = await fetch("SELECT do_not_contact FROM member WHERE phone = {}", phone)
    assert member[0]["do_not_contact"]
    await buy(client, shop, phone, "2026-11-20T10:00:00+08:00")
    await run_daily(date(2026, 11, 25))
    assert await open_tasks(phone) == []


async def test_wrong_number_flags_the_phone_for_the_owner(
    client: Client, shop: Shop, worked: tuple[dict[str, str], str, int]
) -> None:
    who, phone, task = worked
    await post_outcome(client, who, task, outcome("wrong_number"))
    rows = await fetch("SELECT wrong_number_at FROM member WHERE phone = {}", phone)
    assert rows[0]["wrong_number_at"] is not None


async def test_snooze_moves_the_due_date_within_the_expiry(
    client: Client, shop: Shop, worked: tuple[dict[str, str], str, int]
) -> None:
    who, phone, task = worked
    ok = await client.post(
        f"/advisor/v1/tasks/{task}/snooze", json={"until": "2026-11-22"}, headers=who
    )
    assert ok.status_code == 200 and ok.json()["due_date"] == "2026-11-22"
    assert "followup_3d" not in kinds_for(await today(client, who, "2026-11-21"), phone)
    assert "followup_3d" in kinds_for(await today(client, who, "2026-11-22"), phone)
    late = await client.post(
        f"/advisor/v1/tasks/{task}/snooze", json={"until": "2026-11-24"}, headers=who
    )
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "until"


async def test_a_purchase_within_seven_days_of_a_reached_call_converts_it(
    client: Client, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = await advisor_login(client, shop.advisors[0])
    inside = await join(client, shop, shop.advisors[0])
    outside = await join(client, shop, shop.advisors[0])
    unreached = await join(client, shop, shop.advisors[0])
    for phone in (inside, outside, unreached):
        await buy(client, shop, phone, "2026-11-17T10:00:00+08:00")
    for phone, result in ((inside, "reached"), (outside, "will_buy"), (unreached, "no_answer")):
        (task,) = await open_tasks(phone, "followup_3d")
        await post_outcome(client, who, task, outcome(result, at="2026-11-20T09:00:00+08:00"))
    monkeypatch.setenv("TIANTIAN_NOW", "2026-11-28T12:00:00+08:00")
    await buy(client, shop, inside, "2026-11-26T10:00:00+08:00", [(FORMULA_1, 2, "716.00")])
    await buy(client, shop, inside, "2026-11-26T11:00:00+08:00")  # one conversion per task
    await buy(client, shop, outside, "2026-11-27T10:00:00+08:00")  # 7 days and 1 hour later
    await buy(client, shop, unreached, "2026-11-21T10:00:00+08:00")
    rows = await fetch(
        "SELECT m.phone, t.converted_fen FROM task t JOIN member m ON m.id = t.member"
        " WHERE t.kind = 'followup_3d' AND t.status = 'done' AND m.phone IN ({}, {}, {})",
        inside,
        outside,
        unreached,
    )
    assert {r["phone"]: r["converted_fen"] for r in rows} == {
        inside: 71600,
        outside: None,
        unreached: None,
    }


async def test_a_phone_replaying_a_three_day_queue_in_any_order_ends_as_if_sent_live(
    client: Client, products: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical stores. One advisor sends twenty outcomes live, as they happen
    between 11-20 and 11-23; the other's phone is off and sends the same twenty,
    shuffled, on 11-25 after the 11-24 daily run has expired what was left open."""
    finals = []
    for replay in (False, True):
        shop = await make_shop()
        who = await advisor_login(client, shop.advisors[0])
        phones = []
        monkeypatch.setenv("TIANTIAN_NOW", "2026-11-20T12:00:00+08:00")
        for _ in range(10):
            phone = await join(client, shop, shop.advisors[0])
            await buy(client, shop, phone, "2026-11-17T10:00:00+08:00")
            phones.append(phone)
        monkeypatch.setenv("TIANTIAN_NOW", "2026-11-25T12:00:00+08:00")
        script: list[tuple[str, int, dict[str, Any]]] = []
        tasks = {phone: await open_tasks(phone) for phone in phones}
        day = 20
        for n, phone in enumerate(phones):
            for k, task in enumerate(tasks[phone][:3]):
                result = "reached" if (n + k) % 3 else "no_answer"
                if n == 2 and k == 0:
                    result = "do_not_contact"  # so the later call to her does not count
                at = f"2026-11-{day + (n + k) % 4}T{10 + k}:00:00+08:00"
                script.append((at, task, outcome(result, at=at, client_outcome_id=f"c{n}-{k}")))
        script = script[:20]
        script.sort(key=lambda s: s[0])
        if replay:
            await run_daily(date(2026, 11, 24))
            random.Random(7).shuffle(script)
        for _, task, body in script:
            r = await post_outcome(client, who, task, body)
            assert r.status_code == 201, r.text
        if not replay:
            await run_daily(date(2026, 11, 24))
        rows = await fetch(
            "SELECT t.kind, t.status, t.status_reason, t.result, m.do_not_contact, o.applied,"
            " o.client_outcome_id FROM task t JOIN member m ON m.id = t.member"
            " LEFT JOIN outcome o ON o.task = t.id"
            " WHERE m.home_store = (SELECT id FROM store WHERE code = {})"
            " ORDER BY m.id, t.id",
            shop.code,
        )
        finals.append([tuple(r.values()) for r in rows])
    assert finals[0] == finals[1]


async def test_sync_since_a_cursor_returns_every_change_once_in_pages(
    client: Client, shop: Shop, hq: dict[str, str], worked: tuple[dict[str, str], str, int]
) -> None:
    who, phone, task = worked
    first = (await client.get("/advisor/v1/tasks", headers=who)).json()
    assert task in {t["task_id"] for t in first["tasks"]}
    assert all(not t["reassigned_away"] and t["status"] == "open" for t in first["tasks"])
    cursor = first["cursor"]
    nothing = (await client.get("/advisor/v1/tasks", params={"since": cursor}, headers=who)).json()
    assert nothing["tasks"] == [] and nothing["more"] is False

    await post_outcome(client, who, task, outcome())  # done
    newcomer = await join(client, shop, shop.advisors[0])
    await buy(client, shop, newcomer, "2026-11-20T10:00:00+08:00")  # new tasks
    seen: dict[int, dict[str, Any]] = {}
    pages = 0
    while True:
        page = (
            await client.get("/advisor/v1/tasks", params={"since": cursor, "limit": 1}, headers=who)
        ).json()
        pages += 1
        for t in page["tasks"]:
            seen[t["task_id"]] = t
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert pages >= 3
    assert seen[task]["status"] == "done" and seen[task]["result"] == "reached"
    assert {t["member_phone"] for t in seen.values()} >= {phone, newcomer}

    # The advisor moves to another store: their tasks here go to a colleague, and
    # their phone learns it.
    other = await make_shop()
    me = (await client.get(f"/hq/v1/advisors/{shop.advisors[0]}", headers=hq)).json()
    moved = {"name": me["name"], "phone": me["phone"], "store_code": other.code, "active": True}
    assert (
        await client.put(f"/hq/v1/advisors/{shop.advisors[0]}", json=moved, headers=hq)
    ).status_code == 200
    away = (await client.get("/advisor/v1/tasks", params={"since": cursor}, headers=who)).json()
    assert away["tasks"] and all(t["reassigned_away"] for t in away["tasks"])
    assert {t["member_phone"] for t in away["tasks"]} >= {phone, newcomer}

    bad = await client.get("/advisor/v1/tasks", params={"since": "nonsense"}, headers=who)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "since"


async def test_the_member_at_a_glance_only_for_the_advisors_own_store(
    client: Client, shop: Shop, worked: tuple[dict[str, str], str, int]
) -> None:
    who, phone, task = worked
    await buy(client, shop, phone, "2026-11-19T10:00:00+08:00", [(FORMULA_1, 2, "716.00")])
    await post_outcome(client, who, task, outcome("will_buy", note="周末来店"))
    member_id = (await client.get(f"/pos/v1/members/{phone}", headers=shop.pos)).json()["member_id"]
    r = await client.get(
        f"/advisor/v1/members/{member_id}", params={"purchases_limit": 1}, headers=who
    )
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["phone"] == phone and view["home_store"] == shop.code
    assert view["points_balance"] == 358 + 716 and len(view["ledger"]) == 2
    assert view["purchases_total"] == 2 and len(view["purchases"]) == 1
    assert view["purchases"][0]["total"] == "716.00"  # latest first
    assert view["purchases"][0]["lines"][0] == {
        "sku": FORMULA_1,
        "name": "1段奶粉 800g",
        "quantity": 2,
        "amount": "716.00",
    }
    assert view["repeat_within_90_days"] is True
    done = next(t for t in view["tasks"] if t["task_id"] == task)
    assert done["status"] == "done" and done["outcomes"][0]["note"] == "周末来店"
    colleague = await advisor_login(client, shop.advisors[1])
    assert (
        await client.get(f"/advisor/v1/members/{member_id}", headers=colleague)
    ).status_code == 200
    stranger = await advisor_login(client, (await make_shop()).advisors[0])
    assert (
        await client.get(f"/advisor/v1/members/{member_id}", headers=stranger)
    ).status_code == 404
