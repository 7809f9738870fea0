"""The dispatcher: claims due outbox rows, sends them to each device of their
advisor, and records every device's answer.

A round is three steps. (1) One transaction claims up to 500 due rows for a lease
(on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so several dispatchers share the work and
never claim one row twice), folds pushes over the hourly limit into one summary,
and lists each row's devices as deliveries. (2) The sender sends, outside any
transaction. (3) One transaction records each delivery's answer and settles the
rows. A dispatcher that dies between (2) and (3) leaves its rows claimed until the
lease runs out; the next round sends them again (at least once; the collapse key
makes a repeat replace the first on the phone) and marks them sent once.

Answers: UNREGISTERED deletes the device; a rejected message (invalid, sender
mismatch, third-party auth) fails with its reason; anything else is retried with
exponential backoff and jitter, at least a minute after a quota answer (or the
server's ``Retry-After``), until the push's deadline, after which it fails.
"""

from __future__ import annotations

import json
import logging
import random
import time as walltime
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from core import clock, metrics
from core.db import fetch, in_list, in_write_transaction, is_postgres, param, rows_source
from members.queries import advisor_zones
from notifications.senders import OutgoingPush, PushSender, SendResult
from notifications.services import DEADLINE, after_quiet_hours
from tasks.queries import open_assignments

log = logging.getLogger("tiantian.push")

CLAIM = 500
RETRY_BASE = timedelta(seconds=15)
RETRY_CAP = timedelta(hours=1)
QUOTA_PAUSE = timedelta(minutes=1)
LIMITED_KINDS = ("urgent", "rank", "summary")  # the hourly limit; digests are apart


@dataclass(slots=True)
class FlushReport:
    rounds: int = 0
    claimed: int = 0
    sent: int = 0  # deliveries FCM accepted
    retried: int = 0
    failed: int = 0
    dropped: int = 0  # unregistered devices removed
    folded: int = 0
    seconds: float = 0.0

    def outcomes(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "device_removed": self.dropped,
            "folded": self.folded,
        }


def _count(before: dict[str, int], after: dict[str, int]) -> None:
    """Deliveries by result, counted once their round has committed."""
    for result, n in after.items():
        metrics.count(metrics.PUSHES, result, n - before[result])


@dataclass
class Dispatcher:
    sender: PushSender
    per_hour: int = 6
    # Longer than the slowest batch: 500 rows, 100 in flight, each up to the timeout.
    lease: timedelta = timedelta(minutes=10)
    claim_size: int = CLAIM
    rng: random.Random = field(default_factory=random.Random)

    async def flush(self, max_rounds: int | None = None) -> FlushReport:
        """Send what is due now, round after round, until nothing due is left."""
        report = FlushReport()
        started = walltime.perf_counter()
        while max_rounds is None or report.rounds < max_rounds:
            before = report.outcomes()
            claimed_any, claimed = await in_write_transaction(lambda: self._claim(report))
            _count(before, report.outcomes())
            if not claimed_any:
                break
            report.rounds += 1
            report.claimed += len(claimed)
            if not claimed:  # every row of the claim was held, folded or stale
                continue
            deliveries = await _deliveries([row["id"] for row in claimed])
            # A device that moved to another advisor since (a shared phone) gets
            # nothing more of the one before.
            sendable = [d for d in deliveries if d["platform"] is not None]
            results = await self.sender.send([_outgoing(d) for d in sendable]) if sendable else []
            answers = {d["id"]: r for d, r in zip(sendable, results, strict=True)}
            before = report.outcomes()
            await in_write_transaction(partial(self._record, claimed, deliveries, answers, report))
            _count(before, report.outcomes())
        report.seconds = walltime.perf_counter() - started
        return report

    # --- (1) claim -------------------------------------------------------------

    async def _claim(self, report: FlushReport) -> tuple[bool, list[dict[str, Any]]]:
        """(whether any row was claimed, the rows to send now)."""
        now = clock.now()
        skip = " FOR UPDATE SKIP LOCKED" if is_postgres() else ""
        claimed = await fetch(
            "UPDATE push_outbox SET lease_until = {} WHERE id IN (SELECT id FROM push_outbox"
            " WHERE status = 'pending' AND next_attempt_at <= {}"
            " AND (lease_until IS NULL OR lease_until < {})"
            f" ORDER BY next_attempt_at, id LIMIT {{}}{skip})"
            " RETURNING id, advisor, kind, due_at, deadline_at, attempts, data",
            now + self.lease,
            now,
            now,
            self.claim_size,
        )
        if not claimed:
            return False, []
        zones = await advisor_zones([row["advisor"] for row in claimed])
        held: list[tuple[int, datetime]] = []
        stale: list[tuple[int, str]] = []
        for row in claimed:
            # Kept with the row: folding and recording need the advisor's zone too.
            row["timezone"] = zones[row["advisor"]]
            release = after_quiet_hours(now, clock.zone(row["timezone"]))
            if _at(row["deadline_at"]) < now:
                stale.append((row["id"], "the deadline passed before it could be sent"))
            elif release > now:  # due before 21:00, reached after it: held till 08:00
                held.append((row["id"], release))
        stale += await _stale_urgent(claimed)
        if held:
            source, args = rows_source([("id", "bigint"), ("at", "timestamptz")], held)
            await fetch(
                "UPDATE push_outbox SET next_attempt_at = h.at, lease_until = NULL"
                f" FROM ({source}) AS h WHERE push_outbox.id = h.id",
                *args,
            )
        if stale:
            source, args = rows_source([("id", "bigint"), ("why", "text")], stale)
            await fetch(
                "UPDATE push_outbox SET status = 'failed', last_error = s.why, lease_until = NULL"
                f" FROM ({source}) AS s WHERE push_outbox.id = s.id",
                *args,
            )
        report.failed += len(stale)
        aside = {i for i, _ in held} | {i for i, _ in stale}
        claimed = [row for row in claimed if row["id"] not in aside]
        aside, folded = await self._fold(claimed, now) if claimed else (set(), 0)
        report.folded += folded
        claimed = [row for row in claimed if row["id"] not in aside]
        if not claimed:
            return True, []
        ids, args = in_list([row["id"] for row in claimed], "bigint")
        # Each row's devices become its deliveries, the first time it is claimed.
        await fetch(
            "INSERT INTO push_delivery (outbox, token, status, attempts, next_attempt_at)"
            " SELECT o.id, d.token, 'pending', 0, {} FROM push_outbox o"
            f" JOIN device d ON d.advisor = o.advisor WHERE o.id {ids}"
            " AND NOT EXISTS (SELECT 1 FROM push_delivery x WHERE x.outbox = o.id)"
            " ORDER BY o.id, d.token ON CONFLICT (outbox, token) DO NOTHING",
            now,
            *args,
        )
        orphans = await fetch(
            f"UPDATE push_outbox SET status = 'no_device', lease_until = NULL WHERE id {ids}"
            " AND NOT EXISTS (SELECT 1 FROM push_delivery x WHERE x.outbox = push_outbox.id)"
            " RETURNING id",
            *args,
        )
        gone = {row["id"] for row in orphans}
        return True, [row for row in claimed if row["id"] not in gone]

    async def _fold(self, claimed: list[dict[str, Any]], now: datetime) -> tuple[set[int], int]:
        """Pushes beyond ``per_hour`` in the last hour for an advisor become one
        summary push, due when the hour has room again. Returns (rows set aside,
        how many of them were folded). Only untried pushes fold: one already
        delivered to a device keeps going to the others."""
        limited = [r for r in claimed if r["kind"] in ("urgent", "rank") and not r["attempts"]]
        if not limited:
            return set(), 0
        recent, sending = await _hour_so_far(limited, claimed, now)
        by_advisor: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in sorted(limited, key=lambda r: (r["due_at"], r["id"])):
            by_advisor[row["advisor"]].append(row)
        folded: dict[int, list[int]] = {}
        postponed: list[int] = []
        for advisor, rows in by_advisor.items():
            sent, _ = recent.get(advisor, (0, None))
            room = max(self.per_hour - sent, 0)
            if len(rows) > room:
                extra = [r["id"] for r in rows[room:]]
                if advisor in sending:
                    postponed += extra
                else:
                    folded[advisor] = extra
        if postponed:
            cond, id_args = in_list(postponed, "bigint")
            await fetch(
                "UPDATE push_outbox SET next_attempt_at = {}, lease_until = NULL"
                f" WHERE id {cond}",
                now + timedelta(minutes=1),
                *id_args,
            )
        if not folded:
            return set(postponed), 0
        ids = [i for group in folded.values() for i in group]
        cond, id_args = in_list(ids, "bigint")
        await fetch(
            f"UPDATE push_outbox SET status = 'folded', lease_until = NULL WHERE id {cond}",
            *id_args,
        )
        zones = {row["advisor"]: row["timezone"] for row in claimed}
        await _queue_summaries(folded, recent, zones, now)
        return set(ids) | set(postponed), len(ids)

    # --- (3) record --------------------------------------------------------------

    async def _record(
        self,
        claimed: list[dict[str, Any]],
        deliveries: list[dict[str, Any]],
        answers: dict[int, SendResult],
        report: FlushReport,
    ) -> None:
        now = clock.now()
        row_of = {row["id"]: row for row in claimed}
        updates: list[tuple[int, str, datetime, str | None, str | None]] = []
        unregistered = []
        for delivery in deliveries:
            attempts = int(delivery["attempts"]) + 1
            result = answers.get(delivery["id"])
            if result is None:
                updates.append((delivery["id"], "dropped", now, None, "device moved or removed"))
                continue
            if result.outcome == "sent":
                report.sent += 1
                updates.append((delivery["id"], "sent", now, result.message_name, None))
            elif result.outcome == "unregistered":
                report.dropped += 1
                unregistered.append(delivery["token"])
                updates.append((delivery["id"], "dropped", now, None, result.reason))
            elif result.outcome == "rejected":
                report.failed += 1
                updates.append((delivery["id"], "failed", now, None, result.reason))
            else:
                row = row_of[delivery["outbox"]]
                retry_at = after_quiet_hours(
                    now + self._backoff(attempts, result), clock.zone(row["timezone"])
                )
                if retry_at > _at(row["deadline_at"]):
                    report.failed += 1
                    updates.append(
                        (delivery["id"], "failed", now, None, f"deadline passed: {result.reason}")
                    )
                else:
                    report.retried += 1
                    updates.append((delivery["id"], "pending", retry_at, None, result.reason))
        if updates:
            source, args = rows_source(
                [
                    ("id", "bigint"),
                    ("status", "text"),
                    ("at", "timestamptz"),
                    ("message_name", "text"),
                    ("error", "text"),
                ],
                sorted(updates),
            )
            await fetch(
                "UPDATE push_delivery SET status = u.status, attempts = push_delivery.attempts + 1,"
                " next_attempt_at = u.at,"
                " sent_at = CASE WHEN u.status = 'sent' THEN u.at ELSE NULL END,"
                " message_name = u.message_name, error = u.error"
                f" FROM ({source}) AS u WHERE push_delivery.id = u.id"
                " AND push_delivery.status = 'pending'",
                *args,
            )
        if unregistered:
            cond, args = in_list(sorted(set(unregistered)), "text")
            await fetch(f"DELETE FROM device WHERE token {cond}", *args)
        ids, args = in_list([row["id"] for row in claimed], "bigint")
        pending = "SELECT 1 FROM push_delivery d WHERE d.outbox = push_outbox.id AND d.status"
        await fetch(
            "UPDATE push_outbox SET attempts = attempts + 1, lease_until = NULL,"
            f" status = CASE WHEN EXISTS ({pending} = 'pending') THEN 'pending'"
            f" WHEN EXISTS ({pending} = 'sent') THEN 'sent' ELSE 'failed' END,"
            f" sent_at = CASE WHEN NOT EXISTS ({pending} = 'pending')"
            f" AND EXISTS ({pending} = 'sent') THEN {param('timestamptz')} ELSE NULL END,"
            " next_attempt_at = COALESCE((SELECT MIN(d.next_attempt_at) FROM push_delivery d"
            " WHERE d.outbox = push_outbox.id AND d.status = 'pending'), next_attempt_at),"
            " last_error = (SELECT MAX(d.error) FROM push_delivery d"
            " WHERE d.outbox = push_outbox.id AND d.status <> 'sent')"
            f" WHERE id {ids} AND status = 'pending'",
            now,
            *args,
        )

    def _backoff(self, attempts: int, result: SendResult) -> timedelta:
        delay: timedelta = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_CAP)
        delay *= self.rng.uniform(0.8, 1.2)
        if result.quota:
            delay = max(delay, QUOTA_PAUSE)
        if result.retry_after is not None:
            delay = max(delay, timedelta(seconds=result.retry_after))
        return delay


async def _deliveries(outbox_ids: list[int]) -> list[dict[str, Any]]:
    """Each claimed row's deliveries due now, with the row's message; ``platform`` is
    None where the device is no longer the advisor's."""
    ids, args = in_list(outbox_ids, "bigint")
    return await fetch(
        "SELECT d.id, d.outbox, d.token, d.attempts, dev.platform, o.kind, o.dedupe_key,"
        " o.title, o.body, o.data FROM push_delivery d JOIN push_outbox o ON o.id = d.outbox"
        " LEFT JOIN device dev ON dev.token = d.token AND dev.advisor = o.advisor"
        f" WHERE d.outbox {ids} AND d.status = 'pending' AND d.next_attempt_at <= {{}}"
        " ORDER BY d.id",
        *args,
        clock.now(),
    )


def _at(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def _stale_urgent(claimed: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Urgent pushes whose task is no longer open with that advisor (done, cancelled
    or handed on while the push was held): nothing to be urgent about."""
    wanted: dict[int, tuple[int, int]] = {}
    for row in claimed:
        if row["kind"] == "urgent":
            data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
            if str(data.get("task_id", "")).isdigit():
                wanted[row["id"]] = (int(data["task_id"]), row["advisor"])
    if not wanted:
        return []
    live = await open_assignments([t for t, _ in wanted.values()])
    return [
        (outbox, "the task is no longer open for this advisor")
        for outbox, key in wanted.items()
        if key not in live
    ]


def _outgoing(delivery: dict[str, Any]) -> OutgoingPush:
    data = delivery["data"]
    return OutgoingPush(
        delivery_id=int(delivery["id"]),
        token=delivery["token"],
        platform=delivery["platform"] or "",
        title=delivery["title"],
        body=delivery["body"],
        data=json.loads(data) if isinstance(data, str) else dict(data),
        collapse_key=delivery["dedupe_key"],
        urgent=delivery["kind"] == "urgent",
    )


async def _hour_so_far(
    limited: list[dict[str, Any]], claimed: list[dict[str, Any]], now: datetime
) -> tuple[dict[int, tuple[int, Any]], set[int]]:
    """Per advisor: the limited pushes sent in the last hour, or being sent right now
    by another dispatcher, and when the first of them went; and the advisors whose
    summary is on its way right now (their extra pushes wait a minute for the next
    summary rather than join one already sent)."""
    advisors, args = in_list(sorted({r["advisor"] for r in limited}), "int")
    kinds, kind_args = in_list(list(LIMITED_KINDS), "text")
    mine, mine_args = in_list([r["id"] for r in claimed], "bigint")
    recent = {
        row["advisor"]: (int(row["n"]), row["first"])
        for row in await fetch(
            "SELECT advisor, COUNT(*) AS n, MIN(sent_at) AS first FROM push_outbox"
            f" WHERE advisor {advisors} AND kind {kinds} AND ((status = 'sent'"
            " AND sent_at > {}) OR (status = 'pending' AND lease_until > {}"
            f" AND NOT id {mine})) GROUP BY advisor",
            *args,
            *kind_args,
            now - timedelta(hours=1),
            now,
            *mine_args,
        )
    }
    sending = {
        row["advisor"]
        for row in await fetch(
            "SELECT advisor FROM push_outbox WHERE kind = 'summary' AND status = 'pending'"
            f" AND advisor {advisors} AND lease_until > {{}}",
            *args,
            now,
        )
    }
    return recent, sending


async def _queue_summaries(
    folded: dict[int, list[int]],
    recent: dict[int, tuple[int, Any]],
    zones: dict[int, str],
    now: datetime,
) -> None:
    summaries: list[tuple[int, str, int, datetime, datetime]] = []
    for advisor, group in sorted(folded.items()):
        first = recent.get(advisor, (0, None))[1]
        # The hour that is full started with the first push sent in it, or with the
        # ones this claim sends now.
        start = _at(first) if first is not None else now
        due = after_quiet_hours(max(now, start + timedelta(hours=1)), clock.zone(zones[advisor]))
        summaries.append(
            (
                advisor,
                f"summary:{advisor}:{now.isoformat()}",
                len(group),
                due,
                due + DEADLINE["summary"],
            )
        )
    source, src_args = rows_source(
        [
            ("advisor", "int"),
            ("dedupe_key", "text"),
            ("n", "int"),
            ("due_at", "timestamptz"),
            ("deadline_at", "timestamptz"),
        ],
        summaries,
    )
    # One pending summary per advisor (a partial unique index): later folds add to it.
    await fetch(
        "INSERT INTO push_outbox (advisor, kind, dedupe_key, title, body, data, due_at,"
        " deadline_at, status, attempts, next_attempt_at, created_at, folded)"
        " SELECT advisor, 'summary', dedupe_key, '新通知',"
        " '另有 ' || CAST(n AS TEXT) || ' 条新通知，请打开天天行动力查看',"
        f" {{}}, due_at, deadline_at, 'pending', 0, due_at, {param('timestamptz')}, n"
        f" FROM ({source}) AS src WHERE true"
        " ON CONFLICT (advisor) WHERE kind = 'summary' AND status = 'pending'"
        " DO UPDATE SET folded = push_outbox.folded + excluded.folded,"
        " body = '另有 ' || CAST(push_outbox.folded + excluded.folded AS TEXT)"
        " || ' 条新通知，请打开天天行动力查看'",
        '{"type": "summary"}',
        now,
        *src_args,
    )
