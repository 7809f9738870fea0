"""Pushes through firebase-admin to a stand-in FCM server (``FCM_ENDPOINT``): the
real SDK builds, sends and parses every request; only Google is replaced."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from core import clock
from core.db import fetch, in_write_transaction, is_postgres
from members import accounts
from notifications import services as pushes
from notifications.dispatch import Dispatcher
from notifications.senders import FcmSender, OutgoingPush
from tests.conftest import (
    BACKEND,
    DATABASE_URL,
    PASSWORD,
    TEST_NOW,
    Shop,
    login,
    make_shop,
    receipt,
    unique_code,
    unique_phone,
)
from tests.fcm_standin import StandInFcm

SHANGHAI = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fcm() -> Iterator[StandInFcm]:
    server = StandInFcm().start_in_thread()
    yield server
    server.stop()


@pytest.fixture
async def sender(fcm: StandInFcm) -> AsyncIterator[FcmSender]:
    made = FcmSender("tiantian-test", endpoint=fcm.url, timeout=2.0)
    yield made
    await made.close()


def at(moment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Move the domain clock (the suite's is Fri 2026-11-20 12:00 in Shanghai)."""
    monkeypatch.setenv("TIANTIAN_NOW", moment)


def token() -> str:
    return f"fcm-{uuid.uuid4().hex}:{uuid.uuid4().hex}"


async def advisor_with_devices(
    client: httpx.AsyncClient, shop: Shop, n: int, which: int = 0
) -> tuple[dict[str, str], list[str]]:
    phone = unique_phone()
    await accounts.create_user("advisor", phone, PASSWORD, advisor_code=shop.advisors[which])
    me = await login(client, phone)
    tokens = [token() for _ in range(n)]
    for t in tokens:
        r = await client.post(
            "/advisor/v1/devices", json={"token": t, "platform": "android"}, headers=me
        )
        assert r.status_code == 201, r.text
        assert t not in r.text  # never shown back whole
    return me, tokens


async def advisor_id(code: str) -> int:
    return int((await fetch("SELECT id FROM advisor WHERE code = {}", code))[0]["id"])


async def queue_urgent(advisor: int, n: int, due: datetime | None = None) -> list[str]:
    keys = [f"urgent:test:{uuid.uuid4().hex}" for _ in range(n)]
    when = due or clock.now()
    await in_write_transaction(
        lambda: pushes.queue(
            [
                pushes.Push(
                    advisor, "urgent", key, "紧急任务", "会员要求送货上门", {"type": "task"}, when
                )
                for key in keys
            ]
        )
    )
    return keys


async def status_of(keys: list[str]) -> list[str]:
    rows = []
    for key in keys:
        rows += await fetch("SELECT status FROM push_outbox WHERE dedupe_key = {}", key)
    return [r["status"] for r in rows]


async def test_devices_move_with_the_phone_and_are_never_shown_whole(
    client: httpx.AsyncClient, products: None
) -> None:
    shop = await make_shop()
    me, (t,) = await advisor_with_devices(client, shop, 1)
    other, _ = await advisor_with_devices(client, shop, 0, which=1)
    r = await client.post(
        "/advisor/v1/devices", json={"token": t, "platform": "ios"}, headers=other
    )
    assert r.status_code == 201 and r.json()["token"] == f"{t[:6]}…{t[-4:]}"
    rows = await fetch("SELECT advisor, platform FROM device WHERE token = {}", t)
    assert rows == [{"advisor": await advisor_id(shop.advisors[1]), "platform": "ios"}]
    r = await client.post("/advisor/v1/devices", json={"token": t, "platform": "nokia"}, headers=me)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "platform"
    assert (await client.delete(f"/advisor/v1/devices/{t}", headers=me)).status_code == 204
    assert await fetch("SELECT 1 FROM device WHERE token = {}", t)  # not theirs any more
    assert (await client.delete(f"/advisor/v1/devices/{t}", headers=other)).status_code == 204
    assert not await fetch("SELECT 1 FROM device WHERE token = {}", t)


async def test_a_digest_reaches_each_device_once(
    client: httpx.AsyncClient, products: None, fcm: StandInFcm, sender: FcmSender
) -> None:
    shop = await make_shop()
    _, tokens = await advisor_with_devices(client, shop, 2)
    # Two purchases three days ago: two follow-ups due today, for the owning advisor.
    for _ in range(2):
        await client.post(
            "/pos/v1/members",
            json={
                "phone": (phone := unique_phone()),
                "advisor_code": shop.advisors[0],
                "babies": [],
            },
            headers=shop.pos,
        )
        body = receipt(phone=phone, purchased_at="2026-11-17T10:00:00+08:00")
        assert (
            await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
        ).status_code == 201
    day = date(2026, 11, 20)
    for _ in range(2):  # deciding twice queues once
        await in_write_transaction(
            lambda: pushes.queue_digests(day, time(8, 30), ["Asia/Shanghai"])
        )
    dispatcher = Dispatcher(sender)
    await dispatcher.flush()
    await dispatcher.flush()
    for t in tokens:
        (message,) = fcm.delivered_to(t)
        assert message["notification"]["title"] == "今日回访"
        assert message["notification"]["body"].startswith("今天有 ")
        assert message["data"]["type"] == "digest" and message["data"]["date"] == "2026-11-20"
        assert message["android"]["collapse_key"].startswith("digest:")
    key = f"digest:{await advisor_id(shop.advisors[0])}:2026-11-20"
    assert await status_of([key]) == ["sent"]


async def test_unregistered_tokens_are_deleted_and_rejections_fail(
    client: httpx.AsyncClient, products: None, fcm: StandInFcm, sender: FcmSender
) -> None:
    shop = await make_shop()
    _, (good, gone, bad) = await advisor_with_devices(client, shop, 3)
    fcm.script(gone, "unregistered")
    fcm.script(bad, "invalid")
    (key,) = await queue_urgent(await advisor_id(shop.advisors[0]), 1)
    report = await Dispatcher(sender).flush()
    assert report.dropped == 1 and report.failed == 1
    assert len(fcm.delivered_to(good)) == 1
    assert not await fetch("SELECT 1 FROM device WHERE token = {}", gone)
    assert await fetch("SELECT 1 FROM device WHERE token = {}", bad)  # kept: not its fault
    rows = await fetch(
        "SELECT d.token, d.status, d.error FROM push_delivery d JOIN push_outbox o"
        " ON o.id = d.outbox WHERE o.dedupe_key = {} ORDER BY d.token",
        key,
    )
    assert {r["token"]: r["status"] for r in rows} == {good: "sent", gone: "dropped", bad: "failed"}
    assert await status_of([key]) == ["sent"]


async def test_a_batch_goes_over_one_http2_connection_and_each_answer_reaches_its_message(
    fcm: StandInFcm, sender: FcmSender
) -> None:
    tokens = [token() for _ in range(150)]
    fcm.script(tokens[7], "unregistered")
    fcm.script(tokens[60], "quota")
    fcm.script(tokens[61], "invalid")
    fcm.script(tokens[149], "unavailable")
    batch = [
        OutgoingPush(n, t, "android", "紧急任务", "送货上门", {"type": "task"}, f"k:{n}", True)
        for n, t in enumerate(tokens)
    ]
    connections = len(fcm.h2_streams)
    results = await sender.send(batch)
    # Google's FCM is HTTP/2: the sender multiplexes a batch over one connection.
    assert len(fcm.h2_streams) == connections + 1
    assert list(fcm.h2_streams.values())[-1] > 1  # many messages in flight at once
    outcomes = {t: r for t, r in zip(tokens, results, strict=True)}
    assert outcomes[tokens[7]].outcome == "unregistered"
    quota = outcomes[tokens[60]]
    assert (quota.outcome, quota.quota, quota.retry_after) == ("retry", True, 60.0)
    assert outcomes[tokens[61]].outcome == "rejected"
    assert outcomes[tokens[149]].outcome == "retry" and not outcomes[tokens[149]].quota
    sent = [t for t in tokens if outcomes[t].outcome == "sent"]
    assert len(sent) == 146
    for n, t in enumerate(tokens):  # delivered once, as built
        if t in sent:
            (message,) = fcm.delivered_to(t)
            assert message["android"]["collapse_key"] == f"k:{n}"
    assert len({outcomes[t].message_name for t in sent}) == 146


async def test_transient_failures_retry_with_backoff_and_deliver_once(
    client: httpx.AsyncClient,
    products: None,
    fcm: StandInFcm,
    sender: FcmSender,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop()
    _, (flaky, throttled) = await advisor_with_devices(client, shop, 2)
    fcm.script(flaky, "unavailable")
    fcm.script(throttled, "quota")
    (key,) = await queue_urgent(await advisor_id(shop.advisors[0]), 1)
    dispatcher = Dispatcher(sender)
    report = await dispatcher.flush()
    assert report.retried == 2 and await status_of([key]) == ["pending"]
    waits = {
        r["token"]: r["next_attempt_at"]
        for r in await fetch(
            "SELECT d.token, d.next_attempt_at FROM push_delivery d JOIN push_outbox o"
            " ON o.id = d.outbox WHERE o.dedupe_key = {}",
            key,
        )
    }
    now = clock.now()
    assert timedelta(seconds=10) <= _at(waits[flaky]) - now <= timedelta(seconds=20)
    assert _at(waits[throttled]) - now >= timedelta(seconds=60)  # quota: a minute at least
    # Nothing is due yet: a flush now sends nothing.
    assert (await dispatcher.flush()).sent == 0
    at("2026-11-20T12:00:30+08:00", monkeypatch)
    assert (await dispatcher.flush()).sent == 1
    at("2026-11-20T12:02:00+08:00", monkeypatch)
    assert (await dispatcher.flush()).sent == 1
    assert len(fcm.delivered_to(flaky)) == 1 and len(fcm.delivered_to(throttled)) == 1
    assert await status_of([key]) == ["sent"]
    # A token that never recovers fails at the push's deadline (a day for urgent).
    _, (dead,) = await advisor_with_devices(client, shop, 1, which=1)
    fcm.script(dead, *["unavailable"] * 30)
    (key,) = await queue_urgent(await advisor_id(shop.advisors[1]), 1)
    for hours in range(0, 30, 2):
        at(
            (datetime(2026, 11, 20, 12, 3, tzinfo=SHANGHAI) + timedelta(hours=hours)).isoformat(),
            monkeypatch,
        )
        await dispatcher.flush()
    assert await status_of([key]) == ["failed"]
    assert fcm.delivered_to(dead) == []


def _at(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def test_quiet_hours_hold_an_urgent_push_until_eight(
    client: httpx.AsyncClient,
    products: None,
    fcm: StandInFcm,
    sender: FcmSender,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert pushes.after_quiet_hours(
        datetime(2026, 11, 20, 22, 15, tzinfo=SHANGHAI), SHANGHAI
    ) == datetime(2026, 11, 21, 8, 0, tzinfo=SHANGHAI)
    assert pushes.after_quiet_hours(
        datetime(2026, 11, 21, 7, 59, tzinfo=SHANGHAI), SHANGHAI
    ) == datetime(2026, 11, 21, 8, 0, tzinfo=SHANGHAI)
    shop = await make_shop()
    me, (t,) = await advisor_with_devices(client, shop, 1)
    # A member asks for a delivery on a call at 22:15: an urgent task, pushed at 08:00.
    at("2026-11-20T22:15:00+08:00", monkeypatch)
    phone = unique_phone()
    await client.post(
        "/pos/v1/members",
        json={"phone": phone, "advisor_code": shop.advisors[0], "babies": []},
        headers=shop.pos,
    )
    tasks = (await client.get("/advisor/v1/tasks", headers=me)).json()["tasks"]
    welcome = next(x for x in tasks if x["kind"] == "welcome")
    r = await client.post(
        f"/advisor/v1/tasks/{welcome['task_id']}/outcome",
        json={
            "client_outcome_id": unique_code("O"),
            "channel": "phone",
            "result": "delivery_requested",
            "recorded_at": "2026-11-20T22:10:00+08:00",
        },
        headers=me,
    )
    assert r.status_code == 201, r.text
    delivery_task = r.json()["callback_task_id"]
    rows = await fetch(
        "SELECT kind, body, due_at, data FROM push_outbox WHERE dedupe_key LIKE {}",
        f"urgent:{delivery_task}:%",
    )
    assert len(rows) == 1 and rows[0]["body"] == "会员要求送货上门"
    assert _at(rows[0]["due_at"]) == datetime(2026, 11, 21, 8, 0, tzinfo=SHANGHAI)
    await Dispatcher(sender).flush()
    assert fcm.delivered_to(t) == []
    at("2026-11-21T08:00:05+08:00", monkeypatch)
    await Dispatcher(sender).flush()
    (message,) = fcm.delivered_to(t)
    assert message["data"] == {"type": "task", "task_id": str(delivery_task), "kind": "delivery"}
    assert message["android"]["priority"] == "high"


async def test_pushes_over_the_hourly_limit_fold_into_one_summary(
    client: httpx.AsyncClient,
    products: None,
    fcm: StandInFcm,
    sender: FcmSender,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop()
    _, (t,) = await advisor_with_devices(client, shop, 1)
    advisor = await advisor_id(shop.advisors[0])
    dispatcher = Dispatcher(sender, per_hour=2)
    first = await queue_urgent(advisor, 1)
    await dispatcher.flush()
    more = await queue_urgent(advisor, 3)
    report = await dispatcher.flush()
    assert report.folded == 2
    assert len(fcm.delivered_to(t)) == 2
    assert sorted(await status_of(first + more)) == ["folded", "folded", "sent", "sent"]
    (summary,) = await fetch(
        "SELECT body, due_at, status FROM push_outbox WHERE advisor = {} AND kind = 'summary'",
        advisor,
    )
    assert summary["body"].startswith("另有 2 条新通知")
    at("2026-11-20T13:00:30+08:00", monkeypatch)
    await dispatcher.flush()
    assert [m["notification"]["body"] for m in fcm.delivered_to(t)][-1].startswith("另有 2 条")


async def test_a_dispatcher_killed_mid_batch_loses_nothing_and_marks_nothing_twice(
    client: httpx.AsyncClient,
    products: None,
    fcm: StandInFcm,
    sender: FcmSender,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop()
    _, tokens = await advisor_with_devices(client, shop, 6)
    stuck = tokens[0]
    fcm.script(stuck, "hang")
    advisor = await advisor_id(shop.advisors[0])
    keys = await queue_urgent(advisor, 1, due=clock.now() - timedelta(seconds=1))
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "PUSH_BACKEND": "fcm",
        "FCM_ENDPOINT": fcm.url,
        "TIANTIAN_FCM_TIMEOUT_SECONDS": "60",
        "TIANTIAN_NOW": TEST_NOW,
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - killed below, never waited on in the loop
        [sys.executable, "-m", "advisor_api.cli", "push", "flush"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(900):  # until FCM has taken every message but the stuck one (a loaded
            # machine takes a while to start the process)
            if all(fcm.delivered_to(t) for t in tokens[1:]):
                break
            await asyncio.sleep(0.1)
        assert all(fcm.delivered_to(t) for t in tokens[1:])
    finally:
        proc.kill()
        proc.wait()
    # The row is still claimed and nothing is recorded: the answers died with it.
    assert await status_of(keys) == ["pending"]
    # Restarted once the lease has run out: every device gets it (again), once more.
    at("2026-11-20T12:10:30+08:00", monkeypatch)  # the lease is 10 minutes
    await Dispatcher(sender).flush()
    assert await status_of(keys) == ["sent"]
    assert all(len(fcm.delivered_to(t)) >= 1 for t in tokens)
    rows = await fetch(
        "SELECT d.status, d.sent_at FROM push_delivery d JOIN push_outbox o ON o.id = d.outbox"
        " WHERE o.dedupe_key = {}",
        keys[0],
    )
    assert {r["status"] for r in rows} == {"sent"} and len(rows) == 6
    sent_at = sorted(str(r["sent_at"]) for r in rows)
    at("2026-11-20T12:30:00+08:00", monkeypatch)
    assert (await Dispatcher(sender).flush()).claimed == 0
    again = await fetch(
        "SELECT d.sent_at FROM push_delivery d JOIN push_outbox o ON o.id = d.outbox"
        " WHERE o.dedupe_key = {}",
        keys[0],
    )
    assert sorted(str(r["sent_at"]) for r in again) == sent_at


@pytest.mark.skipif(BACKEND != "postgres", reason="SKIP LOCKED claims: PostgreSQL")
async def test_two_dispatchers_never_claim_the_same_row(
    client: httpx.AsyncClient, products: None, fcm: StandInFcm, sender: FcmSender
) -> None:
    assert is_postgres()
    shops = [await make_shop() for _ in range(10)]
    tokens: list[str] = []
    for shop in shops:
        for which in (0, 1):
            _, mine = await advisor_with_devices(client, shop, 1, which=which)
            tokens += mine
            for _ in range(10):
                await queue_urgent(await advisor_id(shop.advisors[which]), 1)
    one = Dispatcher(sender, per_hour=100, claim_size=20)
    two = Dispatcher(sender, per_hour=100, claim_size=20)
    first, second = await asyncio.gather(one.flush(), two.flush())
    assert first.claimed > 0 and second.claimed > 0
    assert first.claimed + second.claimed == 200
    assert all(len(fcm.delivered_to(t)) == 10 for t in tokens)


async def test_a_push_reached_late_is_held_past_quiet_hours_and_a_stale_one_dropped(
    client: httpx.AsyncClient,
    products: None,
    fcm: StandInFcm,
    sender: FcmSender,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop()
    _, (t,) = await advisor_with_devices(client, shop, 1)
    advisor = await advisor_id(shop.advisors[0])
    # Due at 20:59, but the dispatcher only gets to it at 21:30 (it was down).
    (late,) = await queue_urgent(advisor, 1, due=datetime(2026, 11, 20, 20, 59, tzinfo=SHANGHAI))
    at("2026-11-20T21:30:00+08:00", monkeypatch)
    await Dispatcher(sender).flush()
    assert fcm.delivered_to(t) == [] and await status_of([late]) == ["pending"]
    # An urgent push about a task that is no longer open is not sent at 08:00.
    stale_key = f"urgent:test:{uuid.uuid4().hex}"
    await in_write_transaction(
        lambda: pushes.queue(
            [
                pushes.Push(
                    advisor,
                    "urgent",
                    stale_key,
                    "紧急任务",
                    "会员要求送货上门",
                    {"type": "task", "task_id": "999999999"},
                    clock.now(),
                )
            ]
        )
    )
    at("2026-11-21T08:00:30+08:00", monkeypatch)
    report = await Dispatcher(sender).flush()
    assert len(fcm.delivered_to(t)) == 1
    assert await status_of([late]) == ["sent"] and await status_of([stale_key]) == ["failed"]
    assert report.failed == 1


async def test_a_kind_hq_marks_urgent_pushes_from_the_daily_run_too(
    client: httpx.AsyncClient, products: None
) -> None:
    from tasks.daily import run_daily
    from tasks.playbook import load_rules, save_rules

    shop = await make_shop()
    advisor = await advisor_id(shop.advisors[0])
    phone = unique_phone()
    await client.post(
        "/pos/v1/members",
        json={"phone": phone, "advisor_code": shop.advisors[0], "babies": []},
        headers=shop.pos,
    )
    body = receipt(phone=phone, purchased_at="2026-10-06T10:00:00+08:00")
    assert (await client.post("/pos/v1/purchases", json=body, headers=shop.pos)).status_code == 201
    before = (await load_rules())["reactivate"]
    await save_rules([replace(before, params={**before.params, "urgent": True})])
    try:
        await run_daily(date(2026, 11, 20))  # 45 days after the last purchase
    finally:
        await save_rules([before])
    rows = await fetch(
        "SELECT body, data FROM push_outbox WHERE advisor = {} AND kind = 'urgent'", advisor
    )
    assert len(rows) == 1 and '"kind": "reactivate"' in rows[0]["data"]


async def test_a_push_being_sent_by_another_dispatcher_counts_toward_the_hour(
    client: httpx.AsyncClient, products: None, fcm: StandInFcm, sender: FcmSender
) -> None:
    # Pushes earlier tests of the session left due are sent first: the count below is
    # of this advisor's alone.
    await Dispatcher(sender, per_hour=1_000).flush()
    shop = await make_shop()
    _, (t,) = await advisor_with_devices(client, shop, 1)
    advisor = await advisor_id(shop.advisors[0])
    (busy,) = await queue_urgent(advisor, 1)
    # Another dispatcher holds that one (its lease runs), and sends it any moment.
    await fetch(
        "UPDATE push_outbox SET lease_until = {} WHERE dedupe_key = {}",
        clock.now() + timedelta(minutes=5),
        busy,
    )
    (extra,) = await queue_urgent(advisor, 1)
    report = await Dispatcher(sender, per_hour=1).flush()
    assert report.folded == 1 and await status_of([extra]) == ["folded"]
    assert fcm.delivered_to(t) == []
