"""Faults against real processes and the real database (PostgreSQL only): backends
killed under a batch of receipts and the database refusing connections for a while,
a dispatcher killed mid-flush, FCM down for several retry rounds, and the daily run
killed halfway. Only FCM is a stand-in (tests/fcm_standin.py, reached through the
real firebase-admin client)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, suppress
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from core import clock
from core.db import fetch, in_write_transaction
from notifications import services as pushes
from tasks.daily import births_turning, run_daily
from tests.conftest import (
    ADMIN_URL,
    BACKEND,
    DATABASE_URL,
    FORMULA_1,
    PROBIOTIC,
    TEST_NOW,
    Shop,
    make_shop,
    receipt,
    unique_code,
    unique_phone,
)
from tests.fcm_standin import ERRORS, StandInFcm
from tests.fcm_standin import _error as fcm_error

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres", reason="killed backends, refused connections: PostgreSQL"
)

REPO = Path(__file__).resolve().parent.parent
DB_NAME = DATABASE_URL.rsplit("/", 1)[1]
# The server under test connects under this name, so that only its backends are killed.
SERVER_APP = "tiantian-fault-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def cli(
    *args: str, env: dict[str, str] | None = None, quiet: bool = False
) -> asyncio.subprocess.Process:
    """``tiantian …`` as a process of its own, on this run's database. ``quiet`` for a
    process nobody reads (a server, one to be killed): its output is dropped rather
    than left to fill a pipe."""
    out = asyncio.subprocess.DEVNULL if quiet else asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "advisor_api.cli",
        *args,
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": DATABASE_URL, "TIANTIAN_NOW": TEST_NOW, **(env or {})},
        stdout=out,
        stderr=out,
    )


async def finish(proc: asyncio.subprocess.Process) -> str:
    """Wait for a CLI process; its stdout, with stderr in the message if it failed."""
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"exit {proc.returncode}: {err.decode()[-3000:]}"
    return out.decode()


async def kill9(proc: asyncio.subprocess.Process) -> None:
    with suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


@asynccontextmanager
async def api_server() -> AsyncIterator[str]:
    """``tiantian serve`` (one process, no scheduler) on a free port."""
    port = free_port()
    proc = await cli(
        "serve",
        "--port",
        str(port),
        "--no-scheduler",
        env={"DATABASE_URL": f"{DATABASE_URL}?application_name={SERVER_APP}"},
        quiet=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(300):
                with suppress(httpx.TransportError):
                    if (await http.get("/health/live")).status_code == 200:
                        break
                assert proc.returncode is None, "the server did not start"
                await asyncio.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            await kill9(proc)


async def terminate_server_backends(conn: asyncpg.Connection) -> int:
    """Kill every backend the server holds on this run's database (busy or idle)."""
    killed = await conn.fetchval(
        "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name = $2",
        DB_NAME,
        SERVER_APP,
    )
    return int(killed)


async def writing_server_backends(conn: asyncpg.Connection) -> int:
    """The server's backends inside a transaction that has written something."""
    return int(
        await conn.fetchval(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2"
            " AND backend_xid IS NOT NULL",
            DB_NAME,
            SERVER_APP,
        )
    )


def assert_unavailable(r: httpx.Response) -> None:
    """A 503 a client can act on: problem details and when to come back."""
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["status"] == 503


# --- 1. backends killed under a batch of receipts; connections refused a while ----


async def test_killed_backends_and_refused_connections_never_book_a_receipt_twice(
    client: httpx.AsyncClient, products: None
) -> None:
    shop = await make_shop()
    phones = [unique_phone() for _ in range(100)]
    batch = [
        receipt(
            receipt_id=unique_code("RF"),
            phone=phones[i % len(phones)],
            lines=[(FORMULA_1, 1, f"{300 + i}.00"), (PROBIOTIC, 1, "9.50")],
            advisor_code=shop.advisors[i % 2],
        )
        for i in range(500)
    ]
    body = {"purchases": batch}
    db = await asyncpg.connect(DATABASE_URL)
    admin = await asyncpg.connect(ADMIN_URL)
    answers: list[int] = []
    try:
        async with api_server() as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
            assert (await http.get("/health/ready")).status_code == 200
            # (a) The batch's connection killed under it, again and again.
            post = asyncio.create_task(
                http.post("/pos/v1/purchases/batch", json=body, headers=shop.pos)
            )
            mid_flight = 0
            deadline = time.monotonic() + 20
            while not post.done() and time.monotonic() < deadline:
                if mid_flight < 3 and await writing_server_backends(db):
                    mid_flight += await terminate_server_backends(db)
                await asyncio.sleep(0.01)
            first = await post
            answers.append(first.status_code)
            assert mid_flight >= 1, "no write transaction was caught working"
            # Fewer kills than the server's attempts: it runs the transaction again on a
            # fresh connection each time and answers the batch itself.
            assert first.status_code == 200, first.text

            # (b) The database refuses connections for a while.
            await admin.execute(f'ALTER DATABASE "{DB_NAME}" ALLOW_CONNECTIONS false')
            try:
                await terminate_server_backends(db)
                ready = await http.get("/health/ready")
                assert ready.status_code == 503, ready.text
                assert ready.json()["status"] == "unavailable"
                refused = await http.post("/pos/v1/purchases/batch", json=body, headers=shop.pos)
                answers.append(refused.status_code)
                assert_unavailable(refused)
            finally:
                await admin.execute(f'ALTER DATABASE "{DB_NAME}" ALLOW_CONNECTIONS true')
            # Back without a restart.
            for _ in range(100):
                if (await http.get("/health/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await http.get("/health/ready")).status_code == 200

            # (c) The till sends the same batch until it is taken.
            for _ in range(50):
                r = await http.post("/pos/v1/purchases/batch", json=body, headers=shop.pos)
                answers.append(r.status_code)
                if r.status_code == 200:
                    break
                assert_unavailable(r)
                await asyncio.sleep(0.2)
            assert r.status_code == 200, answers
            results = r.json()["results"]
            assert [x["receipt_id"] for x in results] == [b["receipt_id"] for b in batch]
            assert {x["status"] for x in results} <= {"created", "duplicate"}, results[:3]
            again = await http.post("/pos/v1/purchases/batch", json=body, headers=shop.pos)
            assert again.status_code == 200
            assert {x["status"] for x in again.json()["results"]} == {"duplicate"}
    finally:
        await admin.close()
        await db.close()
    await assert_booked_once(shop.code, batch)


async def assert_booked_once(store_code: str, batch: list[dict[str, Any]]) -> None:
    """Every receipt one purchase with one ledger row; balances the ledger's sums."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await conn.fetch(
            "SELECT p.receipt_id, COUNT(DISTINCT p.id) AS purchases, COUNT(l.id) AS ledger,"
            " MIN(p.points_earned) AS points, SUM(l.points) AS booked"
            " FROM purchase p JOIN store s ON s.id = p.store"
            " LEFT JOIN points_ledger l ON l.purchase = p.id"
            " WHERE s.code = $1 GROUP BY p.receipt_id",
            store_code,
        )
        by_receipt = {r["receipt_id"]: r for r in rows}
        assert set(by_receipt) == {b["receipt_id"] for b in batch}
        for b in batch:
            row = by_receipt[b["receipt_id"]]
            expected = int(float(b["lines"][0]["amount"]) + 9.5)
            assert (row["purchases"], row["ledger"]) == (1, 1), b["receipt_id"]
            assert row["points"] == row["booked"] == expected, b["receipt_id"]
        members = await conn.fetch(
            "SELECT m.phone, m.points_balance, (SELECT COALESCE(SUM(points), 0)"
            " FROM points_ledger l WHERE l.member = m.id) AS total,"
            " (SELECT COUNT(*) FROM purchase p WHERE p.member = m.id) AS purchases"
            " FROM member m WHERE m.phone = ANY($1::text[])",
            sorted({b["member_phone"] for b in batch}),
        )
        expected_by_phone: dict[str, tuple[int, int]] = {}
        for b in batch:
            n, points = expected_by_phone.get(b["member_phone"], (0, 0))
            expected_by_phone[b["member_phone"]] = (
                n + 1,
                points + int(float(b["lines"][0]["amount"]) + 9.5),
            )
        assert len(members) == len(expected_by_phone)
        for m in members:
            n, points = expected_by_phone[m["phone"]]
            assert (m["purchases"], m["points_balance"], m["total"]) == (n, points, points)
    finally:
        await conn.close()


# --- pushes: the stand-in FCM, able to stall mid-batch or be down -------------------


class FaultyFcm(StandInFcm):
    """The stand-in FCM of tests/fcm_standin.py, with three faults of a whole server:
    it stops answering once ``hold_after`` messages are accepted (a dispatcher caught
    mid-batch), answers every message 503 (``down``), or refuses connections."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_after: int | None = None
        self.down = False

    def _answer(
        self, request_line: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            holding = self.hold_after is not None and len(self.accepted) >= self.hold_after
            if self.down and not holding:
                self.requests += 1
                status, code, fcm_code, text = ERRORS["unavailable"]
                return status, fcm_error(status, code, fcm_code, text), {}
        if holding:
            return 0, {}, {}  # never answers
        return super()._answer(request_line, headers, body)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(asyncio.CancelledError):  # a held answer, dropped at shutdown
            await super()._serve(reader, writer)

    def refuse(self) -> None:
        """Stop listening: every connection is refused, as from a host that is down."""
        assert self._loop is not None and self._server is not None
        server = self._server

        async def close() -> None:
            server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)

    def reopen(self) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.start(self.port), self._loop).result(5)

    def deliveries(self, tokens: set[str]) -> Counter[tuple[str, str]]:
        """How often each (push, device) was accepted, for these devices."""
        with self._lock:
            return Counter(
                (m["android"]["collapse_key"], m["token"])
                for m in self.accepted
                if m.get("token") in tokens
            )


@pytest.fixture(scope="module")
def faulty_fcm() -> Iterator[FaultyFcm]:
    server = FaultyFcm()
    server.start_in_thread()
    yield server
    server.stop()


def push_env(fcm: FaultyFcm, now: str = TEST_NOW, timeout: int = 30) -> dict[str, str]:
    return {
        "PUSH_BACKEND": "fcm",
        "FCM_ENDPOINT": fcm.url,
        "TIANTIAN_PUSH_LEASE_SECONDS": "1",
        "TIANTIAN_FCM_TIMEOUT_SECONDS": str(timeout),
        "TIANTIAN_NOW": now,
    }


def later(seconds: float) -> str:
    """The suite's instant moved on by ``seconds``, as TIANTIAN_NOW."""
    return (datetime.fromisoformat(TEST_NOW) + timedelta(seconds=seconds)).isoformat()


async def advisors_with_work(client: httpx.AsyncClient, shops: int, zone: str) -> dict[int, str]:
    """Stores in ``zone`` whose advisors each have a phone and follow-ups due today (a
    purchase three days ago): advisor id -> device token."""
    made = [await make_shop(timezone=zone) for _ in range(shops)]
    for shop in made:
        batch = [receipt(purchased_at="2026-11-17T10:00:00", advisor_code=a) for a in shop.advisors]
        r = await client.post(
            "/pos/v1/purchases/batch", json={"purchases": batch}, headers=shop.pos
        )
        assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == {"created"}
    codes = [a for shop in made for a in shop.advisors]
    rows = await fetch("SELECT id FROM advisor WHERE code = ANY({}::text[]) ORDER BY id", codes)
    tokens = {}
    for row in rows:
        tokens[row["id"]] = f"fcm-fault-{uuid.uuid4().hex}"
        await pushes.register_device(row["id"], tokens[row["id"]], "android")
    return tokens


async def queue_pushes(tokens: dict[int, str], zone: str, urgent_each: int) -> dict[str, int]:
    """Each advisor's morning digest (decided as the scheduler does) and ``urgent_each``
    urgent pushes: dedupe key -> advisor id."""
    digests = await pushes.queue_digests(date(2026, 11, 20), dtime(8, 30), [zone])
    assert digests == len(tokens)
    urgent = [
        pushes.Push(
            a,
            "urgent",
            f"urgent:fault:{uuid.uuid4().hex}",
            "紧急任务",
            "会员要求送货上门",
            {"type": "task"},
            clock.now(),
        )
        for a in tokens
        for _ in range(urgent_each)
    ]
    await in_write_transaction(lambda: pushes.queue(urgent))
    keys = {p.dedupe_key: p.advisor_id for p in urgent}
    return keys | {f"digest:{a}:2026-11-20": a for a in tokens}


async def outbox(keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = await fetch(
        "SELECT o.dedupe_key, o.status, o.sent_at, o.attempts, o.lease_until, o.deadline_at,"
        " (SELECT COUNT(*) FROM push_delivery d WHERE d.outbox = o.id) AS deliveries,"
        " (SELECT COUNT(*) FROM push_delivery d WHERE d.outbox = o.id AND d.status = 'sent'"
        "  AND d.sent_at IS NOT NULL) AS delivered,"
        " (SELECT MIN(d.attempts) FROM push_delivery d WHERE d.outbox = o.id) AS tries,"
        " (SELECT MIN(d.next_attempt_at) FROM push_delivery d WHERE d.outbox = o.id) AS next_at"
        " FROM push_outbox o WHERE o.dedupe_key = ANY({}::text[])",
        wanted := sorted(keys),
    )
    assert len(rows) == len(wanted)
    return {r["dedupe_key"]: r for r in rows}


def counts(report: str) -> dict[str, int]:
    """``tiantian push flush``'s line as numbers (it counts every push it handled,
    other tests' too)."""
    return {what: int(n) for n, what in re.findall(r"(\d+) (delivered|to retry|failed)", report)}


def at(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


# --- 2. a dispatcher killed mid-flush ---------------------------------------------


async def test_a_dispatcher_killed_mid_flush_delivers_everything_and_records_each_once(
    client: httpx.AsyncClient, products: None, faulty_fcm: FaultyFcm
) -> None:
    fcm = faulty_fcm
    zone = "Asia/Chongqing"  # UTC+8 like the suite's clock; no other test's stores
    tokens = await advisors_with_work(client, 40, zone)
    keys = await queue_pushes(tokens, zone, urgent_each=6)
    assert len(keys) == 560  # more than one claim of 500
    mine = set(tokens.values())
    # FCM stalls after taking 520 of them: the first claim is sent and recorded, the
    # second is in the air when the dispatcher dies.
    fcm.hold_after = len(fcm.accepted) + 520
    proc = await cli("push", "flush", env=push_env(fcm), quiet=True)
    try:
        for _ in range(600):
            if len(fcm.accepted) >= fcm.hold_after or proc.returncode is not None:
                break
            await asyncio.sleep(0.02)
        assert proc.returncode is None, "the dispatcher ended before FCM stalled"
    finally:
        await kill9(proc)
        fcm.hold_after = None
    before = await outbox(keys)
    states = Counter(r["status"] for r in before.values())
    assert set(states) == {"sent", "pending"}, states  # a claim recorded, one in the air
    claimed = [k for k, r in before.items() if r["status"] == "pending"]
    assert all(before[k]["lease_until"] is not None for k in claimed)
    taken = fcm.deliveries(mine)
    assert set(taken.values()) == {1} and len(taken) > states["sent"]

    # While the dead dispatcher's lease holds, nobody takes its rows.
    await finish(await cli("push", "flush", env=push_env(fcm)))
    assert fcm.deliveries(mine) == taken
    assert {r["status"] for r in (await outbox(claimed)).values()} == {"pending"}

    # Once the lease has run out, the next dispatcher sends them (again) and records them.
    await finish(await cli("push", "flush", env=push_env(fcm, now=later(5))))
    after = await outbox(keys)
    for key, row in after.items():
        assert row["status"] == "sent" and row["sent_at"] is not None, (key, row)
        assert row["deliveries"] == row["delivered"] == 1, (key, row)
        # Recorded once: a row sent before the kill keeps its first record.
        first = before[key]
        if first["status"] == "sent":
            assert at(row["sent_at"]) == at(first["sent_at"]) == at(TEST_NOW)
            assert row["attempts"] == first["attempts"] == 1
        else:
            assert at(row["sent_at"]) == at(later(5)) and row["attempts"] == 1
    delivered = fcm.deliveries(mine)
    expected = {(k, tokens[a]) for k, a in keys.items()}
    assert set(delivered) == expected  # every push reached its phone
    again = {pair for pair, n in delivered.items() if n > 1}
    assert again and {k for k, _ in again} <= set(claimed)  # only what died in the air
    # Nothing left to send, nothing sent twice more.
    await finish(await cli("push", "flush", env=push_env(fcm, now=later(60))))
    assert fcm.deliveries(mine) == delivered


# --- 3. FCM down for several retry rounds, then back ------------------------------


async def test_fcm_down_for_several_rounds_loses_nothing_before_its_deadline(
    client: httpx.AsyncClient, products: None, faulty_fcm: FaultyFcm
) -> None:
    fcm = faulty_fcm
    zone = "Asia/Harbin"  # UTC+8; no other test's stores
    tokens = await advisors_with_work(client, 5, zone)
    keys = await queue_pushes(tokens, zone, urgent_each=2)
    mine = set(tokens.values())
    # Round by round on the domain clock (the backoff's clock): 503s, then no server
    # at all, then 503 again; each round comes after the last one's backoff ran out.
    rounds = [(0, "down"), (30, "refused"), (90, "down")]
    try:
        for n, (seconds, fault) in enumerate(rounds, start=1):
            fcm.down = fault == "down"
            if fault == "refused":
                fcm.refuse()
            try:
                out = await finish(await cli("push", "flush", env=push_env(fcm, later(seconds), 2)))
            finally:
                if fault == "refused":
                    fcm.reopen()
            assert counts(out)["to retry"] >= len(keys), out
            now = at(later(seconds))
            wait = timedelta(seconds=15 * 2 ** (n - 1))
            for key, row in (await outbox(keys)).items():
                assert (row["status"], row["tries"], row["sent_at"]) == ("pending", n, None), key
                assert now + wait * 0.8 <= at(row["next_at"]) <= now + wait * 1.2, (key, row)
            assert not fcm.deliveries(mine)
            if n == 1:  # before its backoff has run out, a push is not tried again
                await finish(await cli("push", "flush", env=push_env(fcm, later(5), 2)))
                assert {r["tries"] for r in (await outbox(keys)).values()} == {1}
    finally:
        fcm.down = False
    # FCM is back: the next round delivers every push, once.
    back = later(240)
    out = await finish(await cli("push", "flush", env=push_env(fcm, back, 2)))
    assert counts(out)["delivered"] >= len(keys), out
    for key, row in (await outbox(keys)).items():
        assert row["status"] == "sent" and at(row["sent_at"]) == at(back), (key, row)
        assert at(row["sent_at"]) < at(row["deadline_at"])
        assert row["deliveries"] == row["delivered"] == 1
    assert fcm.deliveries(mine) == Counter({(k, tokens[a]): 1 for k, a in keys.items()})


# --- 4. the daily run killed halfway ----------------------------------------------

ZONES = ("Asia/Shanghai", "Europe/London", "America/Los_Angeles", "Pacific/Auckland")
DAILY_KINDS = ("stage_up", "milestone", "reactivate")
DAILY_APP = "tiantian-fault-daily"


async def join(client: httpx.AsyncClient, shop: Shop, birth: date | None = None) -> str:
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/members",
        json={
            "phone": phone,
            "advisor_code": shop.advisors[0],
            "babies": [{"name": "宝宝", "birth_date": birth.isoformat()}] if birth else [],
        },
        headers=shop.pos,
    )
    assert r.status_code == 201, r.text
    return phone


async def cohort(client: httpx.AsyncClient, shop: Shop, day: date) -> dict[str, list[str]]:
    """Members who are due, on ``day`` in the store's zone, exactly: three stage-ups (a
    baby turning six months in a week, still on stage 1), two milestones (a baby turning
    four months that day) and three reactivations (45 days since the last purchase)."""
    six_months = births_turning(6, day + timedelta(days=7))
    four_months = births_turning(4, day)
    assert six_months and four_months
    members: dict[str, list[str]] = {kind: [] for kind in DAILY_KINDS}
    receipts = []
    for _ in range(3):
        members["stage_up"].append(phone := await join(client, shop, six_months[0]))
        receipts.append(receipt(phone=phone, purchased_at=f"{day - timedelta(days=5)}T10:00:00"))
    for _ in range(2):
        members["milestone"].append(await join(client, shop, four_months[0]))
    for _ in range(3):
        members["reactivate"].append(phone := await join(client, shop))
        receipts.append(
            receipt(
                phone=phone,
                purchased_at=f"{day - timedelta(days=45)}T10:00:00",
                lines=[(PROBIOTIC, 1, "99.00")],
            )
        )
    r = await client.post("/pos/v1/purchases/batch", json={"purchases": receipts}, headers=shop.pos)
    assert {x["status"] for x in r.json()["results"]} == {"created"}, r.text
    return members


async def daily_tasks(phones: Iterable[str]) -> list[dict[str, Any]]:
    return await fetch(
        "SELECT t.kind, m.phone, s.timezone, t.dedupe_key, t.anchor_on, t.due_on, t.expires_on"
        " FROM task t JOIN member m ON m.id = t.member JOIN store s ON s.id = t.store"
        " WHERE m.phone = ANY({}::text[]) AND t.kind = ANY({}::text[])",
        sorted(phones),
        list(DAILY_KINDS),
    )


def shape(tasks: list[dict[str, Any]], days: dict[str, date]) -> Counter[tuple[Any, ...]]:
    """Tasks by zone and kind, with due and expiry as offsets from the run's day."""
    return Counter(
        (
            t["timezone"],
            t["kind"],
            (t["due_on"] - days[t["timezone"]]).days,
            (t["expires_on"] - days[t["timezone"]]).days,
        )
        for t in tasks
    )


async def hold_reactivations(members: dict[str, list[str]]) -> tuple[asyncpg.Connection, int]:
    """A transaction of its own that has written, and not committed, the reactivation
    the daily run will make for one of these members: the run waits on it there, in
    the middle of that zone's transaction. Returns the connection and its backend."""
    phone = members["reactivate"][0]
    (row,) = await fetch(
        "SELECT m.id, m.home_store, m.last_purchase_on FROM member m WHERE m.phone = {}", phone
    )
    conn = await asyncpg.connect(DATABASE_URL)
    await conn.execute("BEGIN")
    await conn.execute(
        "INSERT INTO task (kind, member, store, topic, reason, script, anchor_on, due_on,"
        " expires_on, priority, status, cause, dedupe_key, created_at, updated_at)"
        " VALUES ('reactivate', $1, $2, '', 'held', '', $3, $3, $3, 4, 'open', 'test', $4,"
        " now(), now())",
        row["id"],
        row["home_store"],
        row["last_purchase_on"],
        f"reactivate:{row['id']}:{row['last_purchase_on']}",
    )
    return conn, int(await conn.fetchval("SELECT pg_backend_pid()"))


async def run_waiting_on(db: asyncpg.Connection, holders: dict[int, str]) -> tuple[int, str]:
    """The daily run's backend once it waits on one of the holders: (pid, zone)."""
    for _ in range(1000):
        rows = await db.fetch(
            "SELECT pid, pg_blocking_pids(pid) AS blockers FROM pg_stat_activity"
            " WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'",
            DB_NAME,
            DAILY_APP,
        )
        for row in rows:
            for blocker in row["blockers"]:
                if blocker in holders:
                    return row["pid"], holders[blocker]
        await asyncio.sleep(0.01)
    raise AssertionError("the daily run never reached a held zone")


async def test_the_daily_run_killed_halfway_and_run_again_makes_each_task_once(
    client: httpx.AsyncClient, products: None
) -> None:
    shops = {zone: await make_shop(timezone=zone) for zone in ZONES}
    today = {zone: clock.today(clock.zone(zone)) for zone in ZONES}
    earlier = {zone: day - timedelta(days=30) for zone, day in today.items()}
    killed = {zone: await cohort(client, shops[zone], today[zone]) for zone in ZONES}
    clean = {zone: await cohort(client, shops[zone], earlier[zone]) for zone in ZONES}
    phones = [p for zone in ZONES for group in killed[zone].values() for p in group]
    twins = [p for zone in ZONES for group in clean[zone].values() for p in group]

    db = await asyncpg.connect(DATABASE_URL)
    holders: dict[int, tuple[str, asyncpg.Connection]] = {}
    try:
        for zone in ZONES:
            conn, pid = await hold_reactivations(killed[zone])
            holders[pid] = (zone, conn)
        proc = await cli(
            "run-daily",
            env={"DATABASE_URL": f"{DATABASE_URL}?application_name={DAILY_APP}"},
            quiet=True,
        )
        try:
            # The first of these zones it reaches goes through and commits; the run is
            # killed in the middle of the next one's transaction.
            zones = {pid: zone for pid, (zone, _) in holders.items()}
            _, first = await run_waiting_on(db, zones)
            await holders.pop(next(p for p, z in zones.items() if z == first))[1].close()
            zones = {pid: zone for pid, (zone, _) in holders.items()}
            waiting, second = await run_waiting_on(db, zones)
            assert await daily_tasks(phones), "the first zone's tasks were not committed"
        finally:
            await kill9(proc)
        assert proc.returncode == -signal.SIGKILL
        # Its backend, still waiting, goes too: nothing of that zone was committed.
        await db.execute("SELECT pg_terminate_backend($1)", waiting)
    finally:
        for _, conn in holders.values():
            await conn.close()  # rolled back
        await db.close()
    halfway = Counter(t["timezone"] for t in await daily_tasks(phones))
    assert halfway[first] == 8 and halfway[second] == 0, halfway
    assert sum(halfway.values()) < 8 * len(ZONES), halfway

    out = await finish(await cli("run-daily"))  # run again, to the end
    assert "daily run for each zone's own today" in out
    made = await daily_tasks(phones)
    assert len({t["dedupe_key"] for t in made}) == len(made)
    per_member = Counter((t["kind"], t["phone"]) for t in made)
    expected = {(k, p) for zone in ZONES for k, group in killed[zone].items() for p in group}
    assert set(per_member) == expected and set(per_member.values()) == {1}
    assert not await fetch("SELECT dedupe_key FROM task GROUP BY dedupe_key HAVING COUNT(*) > 1")
    # The same as one clean run makes: the twin members, due 30 days earlier, through
    # an uninterrupted run on their own day.
    assert not await daily_tasks(twins)
    for zone in ZONES:
        await run_daily(earlier[zone], [zone])
    assert shape(made, today) == shape(await daily_tasks(twins), earlier)
