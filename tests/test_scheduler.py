"""Exactly one scheduler acts: the lease (a PostgreSQL advisory lock, or a file lock
beside an SQLite database), and the run-daily command."""

from __future__ import annotations

import pytest

from advisor_api.scheduler import Scheduler
from core.lease import Leadership
from tests.conftest import BACKEND
from tests.test_cli import tiantian


async def test_one_scheduler_holds_the_lease_and_another_takes_over_when_it_goes() -> None:
    first, second = Leadership(), Leadership()
    try:
        assert await first.check() is True
        assert await second.check() is False
        await first.release()
        assert await second.check() is True
        assert await first.check() is False
        assert await second.check() is True  # still holding it: stays the leader
        if BACKEND == "postgres":
            # The leader loses its lock (as when the server ends its session): it
            # notices on its next check and stands by.
            await second._conn.execute("SELECT pg_advisory_unlock_all()")
            assert await second.check() is False
    finally:
        await first.release()
        await second.release()


@pytest.mark.usefixtures("shop")
async def test_a_started_scheduler_keeps_a_daily_job_per_time_zone() -> None:
    jobs = Scheduler()
    await jobs.start()
    try:
        assert jobs.state == "running"
        assert jobs.jobs.get_job("daily:Asia/Shanghai") is not None
    finally:
        await jobs.stop()
    assert jobs.state == "off"


@pytest.mark.usefixtures("shop")
def test_run_daily_prints_what_it_did() -> None:
    done = tiantian("run-daily", "--date", "2026-11-21")
    assert done.returncode == 0, done.stderr
    assert "daily run for 2026-11-21" in done.stdout
    assert "created" in done.stdout and "expired" in done.stdout and "elapsed" in done.stdout
