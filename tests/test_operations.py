"""Running the service: CORS preflight, request ids and access lines, JSON logs,
metrics, liveness and readiness, several workers with one scheduler, and the
production guard rails."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from advisor_api.app import create_app
from advisor_api.observe import JsonFormatter
from advisor_api.settings import Settings
from members import accounts
from tests.conftest import (
    BACKEND,
    DATABASE_URL,
    PASSWORD,
    TEST_NOW,
    Shop,
    login,
    receipt,
    unique_phone,
)
from tests.test_outcomes import open_tasks, outcome, post_outcome
from tests.test_tasks import advisor_login, buy, join

REPO = Path(__file__).resolve().parent.parent
Client = httpx.AsyncClient


def app_client(settings: Settings) -> httpx.AsyncClient:
    """An app with settings of its own, in this loop and on this run's pool (the
    session's ``client`` has opened it), as conftest serves the main one."""
    transport = httpx.ASGITransport(app=create_app(settings, scheduler=False))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def settings_with(**changes: object) -> Settings:
    base = Settings(
        jwt_secret="x" * 32,
        token_ttl=timedelta(hours=1),
        points_per_yuan=Decimal(1),
        host="127.0.0.1",
        port=8000,
        pos_key_cache_seconds=0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def test_a_browser_preflight_to_a_guarded_route_is_answered(client: Client) -> None:
    """Every browser sends OPTIONS before a cross-origin call: never a 500, and the
    methods listed are all of the path's."""
    r = await client.options("/hq/v1/advisors/A00001")
    assert r.status_code == 204
    assert set(r.headers["allow"].split(", ")) == {"GET", "PUT", "OPTIONS"}


async def test_a_configured_origin_gets_cors_answers() -> None:
    settings = settings_with(cors_origins=("https://shop.example.com",))
    async with app_client(settings) as c:
        r = await c.options(
            "/hq/v1/stores",
            headers={
                "Origin": "https://shop.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert r.status_code in (200, 204)
        assert r.headers["access-control-allow-origin"] == "https://shop.example.com"
        other = await c.options(
            "/hq/v1/stores",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in other.headers


async def test_request_ids_are_kept_or_made_and_each_request_logs_one_line(
    client: Client, shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tiantian.access")
    r = await client.post(
        "/pos/v1/purchases", json=receipt(), headers={**shop.pos, "X-Request-ID": "till-42.a"}
    )
    assert r.status_code == 201 and r.headers["x-request-id"] == "till-42.a"
    made = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32 and " " not in made.headers["x-request-id"]
    lines = [rec for rec in caplog.records if rec.name == "tiantian.access"]
    purchase = next(rec for rec in lines if getattr(rec, "request_id", "") == "till-42.a")
    assert purchase.route == "/pos/v1/purchases"  # type: ignore[attr-defined]
    assert purchase.status == 201 and purchase.role == "pos"  # type: ignore[attr-defined]
    assert purchase.method == "POST" and purchase.ms >= 0  # type: ignore[attr-defined]
    assert sum(1 for rec in lines if getattr(rec, "request_id", "") == "till-42.a") == 1


def test_json_log_lines_carry_their_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "tiantian.access", "levelno": 20, "levelname": "INFO", "msg": "GET /x 200"}
    )
    record.route, record.status = "/x", 200
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "GET /x 200" and line["route"] == "/x" and line["status"] == 200
    assert line["level"] == "info" and line["ts"].endswith("Z")


async def test_metrics_count_receipts_and_outcomes(client: Client, shop: Shop) -> None:
    def value(text: str, series: str) -> float:
        found = [line for line in text.splitlines() if line.startswith(series + " ")]
        return float(found[0].split()[-1]) if found else 0.0

    before = (await client.get("/metrics")).text
    assert (
        await client.post("/pos/v1/purchases", json=receipt(), headers=shop.pos)
    ).status_code == 201
    who = await advisor_login(client, shop.advisors[0])
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-11-17T10:00:00+08:00")
    (task, *_) = await open_tasks(phone)
    assert (await post_outcome(client, who, task, outcome("reached"))).status_code == 201
    after = await client.get("/metrics")
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    text = after.text
    created = 'tiantian_receipts_total{result="created"}'
    assert value(text, created) >= value(before, created) + 2
    reached = 'tiantian_outcomes_total{result="reached"}'
    assert value(text, reached) == value(before, reached) + 1
    assert 'tiantian_tasks_made_total{kind="followup_3d"}' in text
    assert "tiantian_push_outbox_due " in text and "tiantian_push_outbox_oldest_due_seconds" in text
    assert "tiantian_http_requests_total" in text


async def test_metrics_can_require_a_token() -> None:
    settings = settings_with(metrics_token="scrape-me")
    async with app_client(settings) as c:
        assert (await c.get("/metrics")).status_code == 401
        assert (
            await c.get("/metrics", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
        ok = await c.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert ok.status_code == 200 and "tiantian_receipts_total" in ok.text


async def test_liveness_and_readiness(client: Client) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}


async def test_pages_forbid_framing_and_foreign_scripts(client: Client) -> None:
    page = await client.get("/web/login")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"TIANTIAN_JWT_SECRET": ""}, "TIANTIAN_JWT_SECRET"),
        ({"TIANTIAN_JWT_SECRET": "s" * 40, "TIANTIAN_NOW": TEST_NOW}, "TIANTIAN_NOW"),
    ],
)
def test_production_refuses_development_settings(env: dict[str, str], said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "advisor_api.cli", "serve", "--port", "1"],
        cwd=REPO,
        env={**os.environ, "TIANTIAN_ENV": "production", "TIANTIAN_NOW": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "refusing to start" in done.stderr and said in done.stderr


@pytest.fixture(scope="module")
def two_workers() -> Iterator[str]:
    """The service as a deployment runs it: two worker processes, schedulers on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {
        "DATABASE_URL": DATABASE_URL,
        "TIANTIAN_NOW": TEST_NOW,
        "TIANTIAN_LIST_CACHE_SECONDS": "30",
        "TIANTIAN_LOGIN_CACHE_SECONDS": "0",
        "TIANTIAN_LOGINS_PER_MINUTE": "100000",
        "TIANTIAN_ACCESS_LOG": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "advisor_api.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/ready").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


async def _roles(base: str, tries: int = 200) -> set[str]:
    seen: set[str] = set()
    async with httpx.AsyncClient(base_url=base) as c:
        for _ in range(tries):
            # A fresh connection each time, so both workers answer over the run.
            r = await c.get("/health", headers={"Connection": "close"})
            seen.add(r.json().get("scheduler_role"))
            if seen >= {"leader", "standby"}:
                break
    return seen


async def _one_leader_and_one_standby(base: str) -> None:
    seen: set[str] = set()
    for _ in range(30):
        seen = await _roles(base)
        if seen == {"leader", "standby"}:
            break
        await asyncio.sleep(1)  # a standby finds the lease taken on its first minute tick
    assert seen == {"leader", "standby"}


@pytest.mark.skipif(BACKEND != "postgres", reason="several workers share one PostgreSQL database")
async def test_two_workers_serve_with_one_scheduler_and_a_list_never_stale(
    client: Client, shop: Shop, two_workers: str
) -> None:
    await _one_leader_and_one_standby(two_workers)
    async with httpx.AsyncClient(base_url=two_workers) as remote:
        metrics = (await remote.get("/metrics")).text
        leaders = [m for m in metrics.splitlines() if m.startswith("tiantian_scheduler_leader ")]
        assert leaders and float(leaders[0].split()[-1]) == 1.0

        phone = unique_phone()
        await accounts.create_user("advisor", phone, PASSWORD, advisor_code=shop.advisors[0])
        member = await join(client, shop, shop.advisors[0])
        await buy(client, shop, member, "2026-11-17T10:00:00+08:00")
        tasks = await open_tasks(member)
        who = await login(remote, phone)
        for _ in range(20):  # both workers hold the list in memory now
            r = await remote.get("/advisor/v1/today", headers={**who, "Connection": "close"})
            assert r.status_code == 200
        done = await post_outcome(remote, who, tasks[0], outcome("reached"))
        assert done.status_code == 201
        for _ in range(20):
            listed = await remote.get("/advisor/v1/today", headers={**who, "Connection": "close"})
            ids = {t["task_id"] for card in listed.json()["cards"] for t in card["tasks"]}
            assert tasks[0] not in ids, "a worker served a list older than the advisor's call"


@pytest.mark.skipif(BACKEND != "sqlite", reason="the SQLite lease is a file lock beside the file")
async def test_several_workers_on_sqlite_still_have_one_scheduler(two_workers: str) -> None:
    await _one_leader_and_one_standby(two_workers)
