"""The scheduler: APScheduler 3 in the API's event loop, or on its own with
``tiantian scheduler`` when API workers run ``--no-scheduler``.

With several workers or hosts every one runs a scheduler, and exactly one acts: on
PostgreSQL the one holding a session advisory lock on a connection of its own; the
others stand by and try again each minute, taking over when the holder dies (its
connection, and so its lock, goes with it). SQLite is one machine's database: its
one scheduler always acts. The jobs are idempotent anyway.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from advisor_api.jobs import daily_job
from core import clock
from core.lease import Leadership
from members.queries import timezones_in_use
from notifications.dispatch import Dispatcher
from notifications.services import DIGEST_AT, queue_digests
from orders.services import Limits, reroute_overdue

log = logging.getLogger("tiantian.scheduler")

DAILY_AT = {"hour": 0, "minute": 5}  # shortly after each zone's midnight
DIGEST_CRON = {"hour": DIGEST_AT.hour, "minute": DIGEST_AT.minute}  # 08:30 store time


class Scheduler:
    def __init__(
        self,
        dispatcher: Dispatcher | None = None,
        push_every: float = 5.0,
        o2o: Limits | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.push_every = push_every
        self.o2o = o2o or Limits()
        self.jobs = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )
        self.leadership = Leadership()
        self.started = False

    @property
    def state(self) -> str:
        if not self.started:
            return "off"
        return "running" if self.leadership.leader else "standby"

    async def start(self) -> None:
        self.jobs.add_job(self._sync_zones, IntervalTrigger(minutes=1), id="zones")
        # O2O orders past their accept limit move on: the leader alone, like the daily
        # run; a standby takes over with the lease.
        self.jobs.add_job(self._o2o_reroute, IntervalTrigger(minutes=1), id="o2o-reroute")
        if self.dispatcher is not None:
            # Every scheduler dispatches, leader or not: claims skip each other's rows.
            self.jobs.add_job(
                self._push, IntervalTrigger(seconds=self.push_every), id="push-dispatch"
            )
        self.jobs.start()
        self.started = True
        await self._sync_zones()

    async def stop(self) -> None:
        if self.started:
            self.jobs.shutdown(wait=False)
            self.started = False
        await self.leadership.release()

    async def _sync_zones(self) -> None:
        """Take or keep the lease, and keep one daily job per time zone with stores."""
        await self.leadership.check()
        zones = set(await timezones_in_use())
        for zone in zones:
            for job_id, job, at in (
                (f"daily:{zone}", self._daily, DAILY_AT),
                (f"digest:{zone}", self._digest, DIGEST_CRON),
            ):
                if self.jobs.get_job(job_id) is None:
                    self.jobs.add_job(job, CronTrigger(timezone=zone, **at), id=job_id, args=[zone])

    async def _daily(self, zone: str) -> None:
        if not await self.leadership.check():
            return
        report = await daily_job(timezones=[zone])
        log.info(
            "daily run for %s: created %s, expired %s, %d store activity snapshots",
            zone,
            dict(report.tasks.created),
            dict(report.tasks.expired),
            report.snapshots,
        )

    async def _digest(self, zone: str) -> None:
        if not await self.leadership.check():
            return
        day = clock.today(clock.zone(zone))
        made = await queue_digests(day, DIGEST_AT, [zone])
        log.info("morning digests for %s on %s: %s queued", zone, day, made)

    async def _o2o_reroute(self) -> None:
        if not await self.leadership.check():
            return
        report = await reroute_overdue(self.o2o)
        if report.timed_out or report.offered:
            log.info(
                "o2o orders: %s timed out, %s unrouted offered again, %s left unrouted",
                report.timed_out,
                report.offered,
                report.unrouted,
            )

    async def _push(self) -> None:
        assert self.dispatcher is not None
        report = await self.dispatcher.flush()
        if report.seconds > self.push_every:
            # Slower than its own interval: the outbox is outgrowing one dispatcher.
            log.warning(
                "push dispatch took %.1f s, longer than its %.0f s interval (%s claimed)",
                report.seconds,
                self.push_every,
                report.claimed,
            )
        elif report.claimed:
            log.info(
                "pushes: %s claimed, %s delivered, %s to retry, %s failed, %s folded",
                report.claimed,
                report.sent,
                report.retried,
                report.failed,
                report.folded,
            )
