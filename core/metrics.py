"""The figures an operator alerts on, kept with prometheus_client where they happen
and served by ``/metrics``. Counters move only after their transaction commits
(``core.db.after_commit``), so a retried transaction counts once.

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` (set by ``tiantian serve
--workers``) makes every process write its figures to files that ``/metrics`` sums.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECEIPTS = Counter("tiantian_receipts", "Receipts from tills, by result", ["result"])
TASKS_MADE = Counter("tiantian_tasks_made", "Follow-up tasks made, by kind", ["kind"])
TASKS_EXPIRED = Counter("tiantian_tasks_expired", "Tasks expired unworked, by kind", ["kind"])
OUTCOMES = Counter("tiantian_outcomes", "Outcomes recorded from phones, by result", ["result"])
PUSHES = Counter("tiantian_push_deliveries", "Push deliveries to devices, by result", ["result"])
DAILY_RUN_SECONDS = Gauge(
    "tiantian_daily_run_seconds",
    "How long the latest daily run took, by time zone",
    ["timezone"],
    multiprocess_mode="mostrecent",
)
DAILY_RUN_FINISHED = Gauge(
    "tiantian_daily_run_finished_timestamp_seconds",
    "When the latest daily run of a time zone finished (Unix time)",
    ["timezone"],
    multiprocess_mode="mostrecent",
)
# Summed over live processes: 1 when exactly one scheduler acts, as it must.
SCHEDULER_LEADER = Gauge(
    "tiantian_scheduler_leader",
    "1 in the process whose scheduler acts, 0 in those standing by",
    multiprocess_mode="livesum",
)


def count(counter: Counter, label: str, n: float = 1) -> None:
    if n:
        counter.labels(label).inc(n)
