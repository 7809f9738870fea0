"""Every benchmark under ``bench/`` runs once at a tiny size, so that none can rot
unseen: a smoke run, its figures not checked (they are measured at full size, by
hand, beside their floors). The benchmarks speak to PostgreSQL, so this runs in the
PostgreSQL pass of ``make test``; each gets databases of its own and drops them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import ADMIN_URL, BACKEND, TEST_NOW

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="the benchmarks need PostgreSQL")


def _url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def bench(script: str, *args: str, timeout: int = 240) -> str:
    env = {**os.environ, "TIANTIAN_NOW": TEST_NOW}
    env.pop("DATABASE_URL", None)  # each benchmark names its own
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    # A target not met at this size says so and exits 1; anything else is a failure.
    missed = done.returncode == 1 and "NOT met" in done.stdout and "Traceback" not in done.stderr
    assert done.returncode == 0 or missed, f"bench/{script} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dataset() -> Iterator[str]:
    """A national data set in miniature: 20 stores, 40 advisors, 2,000 members."""
    name = f"tiantian_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        out = bench(
            "make_dataset.py",
            "--database-url", _url(name),
            "--stores", "20", "--advisors", "40", "--members", "2000",
        )  # fmt: skip
        assert "total:" in out
        yield _url(name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_daily_runs(dataset: str) -> None:
    out = bench(
        "daily.py", "--database-url", dataset, "--clients", "2", "--seconds", "0.5",
        "--advisors", "5",
    )  # fmt: skip
    assert "first run" in out and "GET /advisor/v1/today" in out
    assert "points expiry pass" in out


def test_leaderboard_runs(dataset: str) -> None:
    out = bench(
        "leaderboard.py", "--database-url", dataset, "--clients", "2", "--seconds", "0.5",
        "--advisors", "5",
    )  # fmt: skip
    assert "advisors, national" in out and "rebuild" in out
    assert "equal a plain window query" in out


def test_rebuild_runs(dataset: str) -> None:
    copy = f"tiantian_rebuild_{uuid.uuid4().hex[:10]}"
    out = bench(
        "rebuild.py", "--database-url", dataset, "--copy", copy,
        "--seconds", "1", "--tills", "2", "--batch", "10",
    )  # fmt: skip
    assert "month rebuild" in out and "weight change" in out
    assert "check (totals equal a rebuild from scratch): met" in out


def test_member_search_runs(dataset: str) -> None:
    out = bench(
        "members.py", "--database-url", dataset, "--clients", "2", "--seconds", "0.5",
        "--advisors", "5",
    )  # fmt: skip
    assert "by tail" in out and "plan by tail" in out and "target (by tail" in out


def test_insights_runs(dataset: str) -> None:
    out = bench("insights.py", "--database-url", dataset, "--repeat", "3", "--floor-repeat", "1")
    assert "target (national month" in out
    # After the daily run's writes, through the triggers, too.
    assert "summaries equal the raw tables: yes" in out


def test_ingest_runs() -> None:
    out = bench(
        "ingest.py", "--admin-url", ADMIN_URL, "--receipts", "600", "--singles", "64",
    )  # fmt: skip
    assert "of the ceiling" in out and "with a 2x promotion" in out
    assert "statement by statement" in out and "single receipts, 16 tills" in out
    assert "SQLite:" in out


def test_push_runs() -> None:
    name = f"tiantian_push_{uuid.uuid4().hex[:10]}"
    try:
        out = bench(
            "push.py", "--database-url", _url(name), "--advisors", "200", "--stores", "5",
            "--dispatchers", "1",
        )  # fmt: skip
        assert "delivered and recorded" in out
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_o2o_runs() -> None:
    name = f"tiantian_o2o_{uuid.uuid4().hex[:10]}"
    try:
        out = bench(
            "o2o.py", "--admin-url", ADMIN_URL, "--name", name, "--stores", "300",
            "--cities", "10", "--members", "500", "--orders", "200", "--http-orders", "40",
        )  # fmt: skip
        assert "floor: bare nearest-store query" in out and "POST /o2o/v1/orders" in out
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_import() -> None:
    out = bench(
        "import.py", "--stores", "5", "--members", "200", "--purchases", "600",
        "--admin-url", ADMIN_URL,
    )  # fmt: skip
    assert "import rows/s" in out and "COPY rows/s" in out
    assert "= points computed" in out and ": True" in out
