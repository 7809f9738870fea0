"""The scheduler: APScheduler 3 in the API's event loop, or on its own with
``tiantian scheduler`` when API workers run ``--no-scheduler``."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler


def build_scheduler() -> AsyncIOScheduler:
    # Jobs join here as the domains grow them (the daily task run, push dispatch).
    # coalesce: a job missed while the process was down runs once, not once per miss.
    return AsyncIOScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
