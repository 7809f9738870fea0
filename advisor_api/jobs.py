"""The daily job as the scheduler, the CLI and the demo run it, zone by zone: the
points that lapsed are booked, the playbook's run (expire, raise the calendar's
follow-ups, warn of points about to lapse), then the members' activity snapshot of the
day just ended. Each domain does its own part; this is where they are put in order."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from core import clock
from members.activity import take_snapshots
from members.lots import expire_points
from members.queries import timezones_in_use
from tasks.daily import run_daily
from tasks.lifecycle import RunReport


@dataclass(slots=True)
class DailyReport:
    tasks: RunReport
    snapshots: int  # store-days of activity written
    points_expired: int = 0
    expiry_seconds: float = 0.0


async def daily_job(day: date | None = None, timezones: Sequence[str] | None = None) -> DailyReport:
    """``day`` defaults to each zone's own today; the snapshot is of the day before."""
    zones = list(timezones) if timezones is not None else await timezones_in_use()
    started, expired = time.perf_counter(), 0
    for zone in zones:
        expired += await expire_points(day or clock.today(clock.zone(zone)), zone)
    expiry_seconds = time.perf_counter() - started
    tasks = await run_daily(day, zones)
    snapshots = 0
    for zone in zones:
        local_day = day or clock.today(clock.zone(zone))
        snapshots += await take_snapshots(local_day, zone)
    return DailyReport(tasks, snapshots, expired, expiry_seconds)
