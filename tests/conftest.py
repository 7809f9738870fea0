"""Each test run makes its own database and drops it afterwards.

``TIANTIAN_TEST_DB=sqlite`` (default): a fresh SQLite file in a temporary folder.
``TIANTIAN_TEST_DB=postgres``: a fresh database next to ``TEST_POSTGRES_URL``.

Piccolo binds tables to one engine at import, so ``DATABASE_URL`` is set here,
before anything imports ``piccolo_conf``; ``make test`` runs the suite once per engine.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

BACKEND = os.environ.get("TIANTIAN_TEST_DB", "sqlite")
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_tmpdir = tempfile.mkdtemp(prefix="tiantian-test-")
_pg_name = f"tiantian_test_{uuid.uuid4().hex[:12]}"

if BACKEND == "postgres":
    DATABASE_URL = ADMIN_URL.rsplit("/", 1)[0] + "/" + _pg_name

    async def _create() -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{_pg_name}"')
        finally:
            await conn.close()

    asyncio.run(_create())
elif BACKEND == "sqlite":
    DATABASE_URL = f"sqlite:///{_tmpdir}/tiantian.sqlite3"
else:
    raise RuntimeError(f"TIANTIAN_TEST_DB must be sqlite or postgres, not {BACKEND!r}")

os.environ["DATABASE_URL"] = DATABASE_URL
# The domain clock of the whole suite: a Friday noon in Shanghai.
TEST_NOW = "2026-11-20T12:00:00+08:00"
os.environ["TIANTIAN_NOW"] = TEST_NOW
os.environ["TIANTIAN_JWT_SECRET"] = "test-secret-" + uuid.uuid4().hex


from advisor_api.app import create_app  # noqa: E402
from advisor_api.cli import migrate  # noqa: E402
from advisor_api.settings import Settings  # noqa: E402
from core.db import connection_pool, fetch  # noqa: E402
from members import accounts, registry  # noqa: E402
from members.schemas import AdvisorIn, ProductIn, StoreIn  # noqa: E402

asyncio.run(migrate())


def pytest_report_header() -> str:
    return f"tiantian database: {BACKEND} ({DATABASE_URL})"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_tmpdir, ignore_errors=True)
    if BACKEND != "postgres":
        return

    async def _drop() -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                _pg_name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{_pg_name}"')
        finally:
            await conn.close()

    asyncio.run(_drop())


TEST_SETTINGS = Settings(
    jwt_secret=os.environ["TIANTIAN_JWT_SECRET"],
    token_ttl=timedelta(hours=1),
    points_per_yuan=Decimal(1),
    host="127.0.0.1",
    port=8000,
    pos_key_cache_seconds=0,
    principal_cache_seconds=0,
    today_cache_seconds=0,
    # Every test signs in from one address; the limiter has a test of its own.
    login_per_minute_per_address=100_000,
)

PASSWORD = "correct-horse-9"
_counter = itertools.count(random.randrange(10**6))


def unique_phone() -> str:
    return f"139{next(_counter) % 10**8:08d}"


def unique_code(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8].upper()}"


@pytest.fixture(scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # In the test's own event loop (Litestar's AsyncTestClient runs the app in a
    # thread of its own), so that the app and the tests' direct queries share one
    # loop and one PostgreSQL pool; the pool is opened here as the app's lifespan would.
    app = create_app(TEST_SETTINGS, scheduler=False)
    async with connection_pool():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def login(client: httpx.AsyncClient, phone: str, password: str = PASSWORD) -> dict[str, str]:
    r = await client.post("/auth/login", json={"phone": phone, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="session")
async def hq(client: httpx.AsyncClient) -> dict[str, str]:
    phone = unique_phone()
    await accounts.create_user("hq", phone, PASSWORD)
    return await login(client, phone)


# Products shared by every test (SKUs are chain-wide). Prices in yuan.
FORMULA_1 = "TF1-800"
FORMULA_2 = "TF2-800"
PROBIOTIC = "TPB-30"
WIPES = "TCA-WIPE"  # not points-eligible


@pytest.fixture(scope="session")
async def products(client: httpx.AsyncClient) -> None:
    for sku, data in [
        (FORMULA_1, ProductIn("1段奶粉 800g", "formula", stage=1, days_of_supply=12)),
        (FORMULA_2, ProductIn("2段奶粉 800g", "formula", stage=2, days_of_supply=14)),
        (PROBIOTIC, ProductIn("益生菌 30袋", "probiotic", days_of_supply=30)),
        (WIPES, ProductIn("湿巾", "care", points_eligible=False)),
    ]:
        await registry.put_product(sku, data)


@dataclass
class Shop:
    """A fresh store of its own for one test: two advisors and a POS key."""

    code: str
    advisors: list[str]
    pos: dict[str, str]


async def make_shop(region: str = "华南", timezone: str = "Asia/Shanghai") -> Shop:
    code = unique_code("S")
    await registry.put_store(code, StoreIn(name=f"测试店{code}", region=region, timezone=timezone))
    advisors = []
    for i in range(2):
        adv = unique_code("A")
        await registry.put_advisor(
            adv, AdvisorIn(name=f"顾问{i}", phone=unique_phone(), store_code=code)
        )
        advisors.append(adv)
    key = await accounts.create_pos_key(code)
    return Shop(code=code, advisors=advisors, pos={"X-API-Key": key})


@pytest.fixture
async def shop(client: httpx.AsyncClient, products: None) -> Shop:
    return await make_shop()


def receipt(
    receipt_id: str | None = None,
    phone: str | None = None,
    lines: list[tuple[str, int, str]] | None = None,
    purchased_at: str = "2026-11-20T10:00:00+08:00",
    advisor_code: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "receipt_id": receipt_id or unique_code("R"),
        "member_phone": phone or unique_phone(),
        "purchased_at": purchased_at,
        "lines": [
            {"sku": sku, "quantity": qty, "amount": amount}
            for sku, qty, amount in (lines or [(FORMULA_1, 1, "358.00")])
        ],
    }
    if advisor_code:
        body["advisor_code"] = advisor_code
    return body


async def ledger_of(phone: str) -> tuple[int, int, int]:
    """(cached balance, ledger sum, ledger rows) of a member, read from the database."""
    rows = await fetch(
        "SELECT m.points_balance AS balance,"
        " (SELECT COALESCE(SUM(points), 0) FROM points_ledger l WHERE l.member = m.id) AS total,"
        " (SELECT COUNT(*) FROM points_ledger l WHERE l.member = m.id) AS n"
        " FROM member m WHERE m.phone = {}",
        phone,
    )
    row = rows[0]
    return int(row["balance"]), int(row["total"]), int(row["n"])
