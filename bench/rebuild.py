"""A month's rebuild and a weight change beside the tills, on a copy of the national
data set of make_dataset.py.

    TIANTIAN_NOW=2026-11-20T12:00:00+08:00 .venv/bin/python bench/rebuild.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/tiantian_big

Copies the data set (``CREATE DATABASE … TEMPLATE``, retried while someone is
connected to it), migrates the copy, and runs tills beside each phase: in this
process, through the service's own ingest (``members.tills.ingest_purchases``),
``--tills`` stores posting one receipt at a time and one store sending batches of
``--batch``, for today and late receipts of earlier days of the month. Each
request's wait for the ledger lock (its advisory-lock statements, timed) and its
latency are kept by phase:

1. the tills alone for ``--seconds`` (the floor);
2. ``tiantian incentives rebuild --period`` for the month, in a process of its own,
   after ``--damage`` of the month's totals were made wrong (so it has totals to
   put right, as after a bug);
3. a change of the points weight (``rules.set_weights``), in a process of its own.

Then, with the tills stopped, it checks that the month's totals equal one
from-scratch ``GROUP BY`` over the score facts (timed: the floor of a rebuild, a
read without the lock) and that every total's score is its counts by the weights in
force; it exits non-zero when a check fails or a till waited longer than 1 s.
The copy is dropped at the end (``--keep`` leaves it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TARGET_WAIT = 1.0  # seconds a till may wait for the ledger lock


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--copy", default="rebuild_bench", help="the copy's database name")
    p.add_argument("--keep", action="store_true", help="keep the copy")
    p.add_argument("--tills", type=int, default=8, help="stores posting single receipts")
    p.add_argument("--pause", type=float, default=0.05, help="a till's pause between receipts")
    p.add_argument("--batch", type=int, default=100, help="receipts in a batch of the batch store")
    p.add_argument("--batch-pause", type=float, default=0.5)
    p.add_argument("--seconds", type=float, default=15.0, help="the tills alone")
    p.add_argument("--damage", type=float, default=0.05, help="share of the month's totals")
    p.add_argument("--points", type=int, default=12, help="the new points weight, hundredths")
    p.add_argument("--only", choices=["rebuild", "reweight"], help="run one of the two")
    p.add_argument("--job", choices=["rebuild", "reweight"], help=argparse.SUPPRESS)
    return p.parse_args()


# --- the copy ----------------------------------------------------------------


def url_of(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def copy_dataset(source: str, name: str) -> str:
    """``name`` made anew from the data set, waiting while anyone is connected to it."""
    admin = await asyncpg.connect(url_of(source, "postgres"))
    template = source.rsplit("/", 1)[1]
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        for attempt in range(60):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except asyncpg.ObjectInUseError:
                if attempt == 59:
                    raise
                print(f"  {template} is in use; trying again in 20 s", flush=True)
                await asyncio.sleep(20)
    finally:
        await admin.close()
    return url_of(source, name)


async def drop_copy(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url_of(url, "postgres"))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


def cli(url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "advisor_api.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


# --- the tills -----------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile: a value that was measured, never one beyond the
    largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Phase:
    name: str
    waits: list[float] = field(default_factory=list)  # for the ledger lock, a request
    latencies: dict[str, list[float]] = field(default_factory=dict)  # by single / batch
    receipts: int = 0

    def lines(self) -> str:
        if not self.waits:
            return f"  tills: nothing booked during {self.name}"
        out = [
            f"  tills: {self.receipts:,} receipts in {len(self.waits):,} requests;"
            f" longest wait for the ledger lock {max(self.waits) * 1000:,.0f} ms"
        ]
        for kind, latencies in sorted(self.latencies.items()):
            p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
            out.append(
                f"    {kind}: {len(latencies):,} requests, latency p50 {p50 * 1000:,.0f} ms,"
                f" p99 {p99 * 1000:,.0f} ms, max {max(latencies) * 1000:,.0f} ms"
            )
        return "\n".join(out)


@dataclass
class Till:
    code: str
    advisors: list[str]
    phones: list[str]
    batch: int
    pause: float


async def tills_of(url: str, args: argparse.Namespace) -> tuple[list[Till], list[str]]:
    """Stores spread over the country, their advisors and members; the catalogue."""
    conn = await asyncpg.connect(url)
    try:
        stores = await conn.fetch(
            "SELECT id, code FROM (SELECT id, code, row_number() OVER (ORDER BY id) AS n,"
            " COUNT(*) OVER () AS total FROM store) s WHERE n % GREATEST(total / $1, 1) = 0"
            " ORDER BY id LIMIT $1",
            args.tills + 1,
        )
        tills = []
        for i, store in enumerate(stores):
            advisors = await conn.fetch(
                "SELECT code FROM advisor WHERE store = $1 AND active ORDER BY id", store["id"]
            )
            phones = await conn.fetch(
                "SELECT phone FROM member WHERE home_store = $1 ORDER BY id LIMIT 200", store["id"]
            )
            batch = args.batch if i == len(stores) - 1 else 1
            pause = args.batch_pause if batch > 1 else args.pause
            tills.append(
                Till(
                    store["code"],
                    [a["code"] for a in advisors],
                    [p["phone"] for p in phones],
                    batch,
                    pause,
                )
            )
        skus = [r["sku"] for r in await conn.fetch("SELECT sku FROM product ORDER BY sku")]
    finally:
        await conn.close()
    return tills, skus


def receipts(till: Till, skus: list[str], rng: random.Random, now: datetime) -> list[Any]:
    """A till's next receipts: mostly known members, one in five a new phone; one in
    four sent late, for an earlier day of the month."""
    out = []
    for _ in range(till.batch):
        at = now - timedelta(minutes=rng.randint(1, 180))
        if rng.random() < 0.25:
            at -= timedelta(days=rng.randint(1, max(1, now.day - 1)))
        phone = rng.choice(till.phones) if till.phones and rng.random() < 0.8 else None
        lines = [
            {"sku": sku, "quantity": rng.choice([1, 1, 2]), "amount": f"{rng.randint(60, 400)}.00"}
            for sku in rng.sample(skus, rng.choice([1, 1, 2]))
        ]
        out.append(
            {
                "receipt_id": f"RB{rng.getrandbits(48):012x}",
                "member_phone": phone or f"199{rng.randint(0, 99_999_999):08d}",
                "advisor_code": rng.choice(till.advisors) if till.advisors else None,
                "purchased_at": at.isoformat(),
                "lines": lines,
            }
        )
    return out


async def run_till(
    till: Till, skus: list[str], seed: int, phase: list[Phase], stop: asyncio.Event
) -> None:
    from advisor_api.settings import Settings
    from core import clock
    from core.db import statement_times
    from members.stores import store_by_code
    from members.tills import ingest_purchases

    rule = Settings.from_env().points_rule
    store = await store_by_code(till.code)
    rng = random.Random(seed)
    while not stop.is_set():
        raws = receipts(till, skus, rng, clock.now().astimezone(clock.zone(store.timezone)))
        current = phase[0]  # a request counts in the phase it was sent in
        started = time.perf_counter()
        async with statement_times() as timed:
            results = await ingest_purchases(store, raws, rule)
        latency = time.perf_counter() - started
        if {r.status for r in results} != {"created"}:
            raise SystemExit(f"a receipt was not created: {results[:2]}")
        kind = "single receipts" if till.batch == 1 else f"batches of {till.batch}"
        current.latencies.setdefault(kind, []).append(latency)
        current.waits.append(sum(s for sql, s in timed if "pg_advisory_xact_lock" in sql))
        current.receipts += len(raws)
        try:
            await asyncio.wait_for(stop.wait(), till.pause)
        except TimeoutError:
            pass


# --- the jobs beside them ------------------------------------------------------


async def job(args: argparse.Namespace) -> None:
    """In a process of its own: the rebuild or the weight change, its report as JSON."""
    from core import clock
    from core.db import connection_pool
    from core.periods import month_of
    from incentives.rebuild import rebuild
    from incentives.rules import Weights, load_weights, rescore, save_weights

    month = month_of(clock.today(clock.zone("Asia/Shanghai"))).name
    async with connection_pool():
        started = time.perf_counter()
        if args.job == "rebuild":
            report = await rebuild(month)
            slicing, written = report.slicing, report.advisor_rows + report.store_rows
        else:  # what rules.set_weights does, with the re-scoring's report
            base = await load_weights()
            changed = Weights(base.new_member, args.points, base.task_done, base.task_converted)
            await save_weights(changed)
            slicing = await rescore()
            written = slicing.written
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "slices": slicing.slices,
                "longest": slicing.longest,
                "gave_way": slicing.gave_way,
                "written": written,
                "month": month,
            }
        )
    )


async def beside_tills(url: str, which: str, args: argparse.Namespace) -> dict[str, Any]:
    """The job in a process of its own (its slices' time is not this process's); its
    report."""
    job = await asyncio.create_subprocess_exec(
        *[sys.executable, __file__, "--job", which, "--points", str(args.points)],
        env={**os.environ, "DATABASE_URL": url},
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await job.communicate()
    if job.returncode:
        raise SystemExit(f"the {which} failed ({job.returncode}): {out.decode()}")
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


# --- damage and checks ---------------------------------------------------------


def month_periods(month: str) -> tuple[list[str], list[str]]:
    """The month's days, ISO weeks and itself; and its weeks alone."""
    first = date.fromisoformat(f"{month}-01")
    days, weeks = [], []
    day = first
    while day.strftime("%Y-%m") == month:
        days.append(day.isoformat())
        year, week, _ = day.isocalendar()
        if f"{year}-W{week:02d}" not in weeks:
            weeks.append(f"{year}-W{week:02d}")
        day += timedelta(days=1)
    return [*days, *weeks, month], weeks


async def damage(url: str, month: str, share: float) -> int:
    """Make ``share`` of the month's totals wrong, as a bug would: counts off, lines
    lost, lines no fact backs. Alone on the ledger, as a writer of totals must be."""
    periods, _ = month_periods(month)
    conn = await asyncpg.connect(url)
    done = 0
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1::bigint)", 0x7449_414E)
            for table, subject in (("advisor_score", "advisor"), ("store_score", "store")):
                picked = f"period = ANY($1::text[]) AND hashtext(period || {subject}) % $2 = 0"
                every = max(1, round(1 / share))
                done += int(
                    (
                        await conn.execute(
                            f"UPDATE {table} SET points = points + 7, score = score + 70"
                            f" WHERE {picked} AND {subject} % 3 <> 0",
                            periods,
                            every,
                        )
                    ).split()[-1]
                )
                done += int(
                    (
                        await conn.execute(
                            f"DELETE FROM {table} WHERE {picked} AND {subject} % 3 = 0",
                            periods,
                            every,
                        )
                    ).split()[-1]
                )
                done += int(
                    (
                        await conn.execute(
                            f"INSERT INTO {table} (period, {subject}, new_members, points,"
                            " tasks_done, tasks_converted, score) SELECT $1, id, 1, 2, 3, 4, 5"
                            f" FROM {subject} WHERE id % $2 = 1"
                            f" ON CONFLICT (period, {subject}) DO NOTHING",
                            f"{month}-01",
                            every * 20,
                        )
                    ).split()[-1]
                )
    finally:
        await conn.close()
    return done


FRESH = """
WITH f AS (SELECT {who} AS who, counts_on, counts_week, counts_month, kind, amount
           FROM score_fact WHERE counts_week = ANY($1::text[])),
sums AS (
  SELECT counts_on::text AS period, who, kind, amount FROM f WHERE counts_month = $2
  UNION ALL SELECT counts_week, who, kind, amount FROM f
  UNION ALL SELECT counts_month, who, kind, amount FROM f WHERE counts_month = $2),
fresh AS (
  SELECT period, who,
    SUM(amount) FILTER (WHERE kind = 'new_member') AS new_members,
    SUM(amount) FILTER (WHERE kind = 'points') AS points,
    SUM(amount) FILTER (WHERE kind = 'task_done') AS tasks_done,
    SUM(amount) FILTER (WHERE kind = 'task_converted') AS tasks_converted
  FROM sums GROUP BY period, who),
scored AS (
  SELECT s.period, s.who, COALESCE(s.new_members, 0) AS new_members,
    COALESCE(s.points, 0) AS points, COALESCE(s.tasks_done, 0) AS tasks_done,
    COALESCE(s.tasks_converted, 0) AS tasks_converted,
    COALESCE(s.new_members, 0) * w.new_member + COALESCE(s.points, 0) * w.points
    + COALESCE(s.tasks_done, 0) * w.task_done
    + COALESCE(s.tasks_converted, 0) * w.task_converted AS score
  FROM fresh s, (SELECT * FROM score_weights LIMIT 1) w),
kept AS (
  SELECT period, {who} AS who, new_members::numeric, points::numeric, tasks_done::numeric,
    tasks_converted::numeric, score::numeric
  FROM {table} WHERE period = ANY($3::text[]))
SELECT (SELECT COUNT(*) FROM scored) AS n,
       (SELECT COUNT(*) FROM (SELECT * FROM scored EXCEPT SELECT * FROM kept) x) AS missing,
       (SELECT COUNT(*) FROM (SELECT * FROM kept EXCEPT SELECT * FROM scored) y) AS extra
"""

MISSCORED = """
SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE t.score <> t.new_members::bigint * w.new_member
  + t.points * w.points + t.tasks_done::bigint * w.task_done
  + t.tasks_converted::bigint * w.task_converted) AS wrong
FROM {table} t, (SELECT * FROM score_weights LIMIT 1) w
"""


async def check(url: str, month: str) -> tuple[bool, float]:
    """The month's totals against one from-scratch sum of the facts, written apart
    from the service's SQL; every score against its counts. Returns (all equal, the
    seconds the from-scratch sums took)."""
    periods, weeks = month_periods(month)
    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    ok, summed = True, 0.0
    try:
        await conn.execute("SET work_mem = '256MB'")
        for table, who in (("advisor_score", "advisor"), ("store_score", "store")):
            started = time.perf_counter()
            row = await conn.fetchrow(FRESH.format(table=table, who=who), weeks, month, periods)
            summed += time.perf_counter() - started
            scores = await conn.fetchrow(MISSCORED.format(table=table))
            equal = row["missing"] == 0 and row["extra"] == 0 and scores["wrong"] == 0
            ok &= equal
            print(
                f"  {table}: {row['n']:,} totals of {month} from scratch,"
                f" {row['missing']:,} missing or different, {row['extra']:,} extra;"
                f" {scores['wrong']:,} of all {scores['n']:,} scores not by the weights"
                f" in force: {'equal' if equal else 'NOT equal'}"
            )
    finally:
        await conn.close()
    return ok, summed


# --- the run ---------------------------------------------------------------------


async def run(args: argparse.Namespace, url: str) -> bool:
    from advisor_api.wiring import wire_domains
    from core.db import connection_pool

    wire_domains()
    tills, skus = await tills_of(url, args)
    phase = [Phase("the tills alone")]
    stop = asyncio.Event()
    async with connection_pool():
        workers = [
            asyncio.create_task(run_till(t, skus, 1000 + i, phase, stop))
            for i, t in enumerate(tills)
        ]
        try:
            print(
                f"tills: {len(tills) - 1} stores posting one receipt at a time (a pause of"
                f" {args.pause:g} s), one sending batches of {args.batch} ({args.batch_pause:g} s)"
            )
            alone = phase[0]
            await asyncio.sleep(args.seconds)
            print(f"the tills alone, {args.seconds:g} s:")
            print(alone.lines(), flush=True)

            from core import clock
            from core.periods import month_of

            month = month_of(clock.today(clock.zone("Asia/Shanghai"))).name
            rebuilt, reweighted = Phase("no rebuild"), Phase("no weight change")
            if args.only in (None, "rebuild"):
                # The bench's own damage holds the ledger alone (seconds, at 1M): the
                # tills' requests sent meanwhile count in a phase of their own.
                damaging = phase[0] = Phase("the damage")
                wrong = await damage(url, month, args.damage)
                rebuilt = phase[0] = Phase("the rebuild")
                done = await beside_tills(url, "rebuild", args)
                print(
                    f"month rebuild {month} beside the tills ({wrong:,} of its totals made"
                    f" wrong first): {done['seconds']:.1f} s, {done['slices']} slices, the"
                    f" longest alone on the ledger {done['longest'] * 1000:,.0f} ms, stepped"
                    f" back for the tills {done['gave_way']} times,"
                    f" {done['written']:,} totals written"
                )
                print(rebuilt.lines(), flush=True)
                print("  while the bench damaged the totals first (alone on the ledger):")
                print(damaging.lines(), flush=True)
            if args.only in (None, "reweight"):
                reweighted = phase[0] = Phase("the weight change")
                done = await beside_tills(url, "reweight", args)
                print(
                    f"weight change (points {args.points / 100:.2f} a point) beside the tills:"
                    f" {done['seconds']:.1f} s, {done['slices']} slices sharing the ledger,"
                    f" the longest {done['longest'] * 1000:,.0f} ms,"
                    f" {done['written']:,} totals re-scored"
                )
                print(reweighted.lines(), flush=True)
            phase[0] = Phase("after")
        finally:
            stop.set()
            await asyncio.gather(*workers)
    print("check, the tills stopped:")
    equal, summed = await check(url, month)
    print(f"  the from-scratch sums of {month} in one statement each, no lock: {summed:.1f} s")
    longest = max(max(p.waits, default=0.0) for p in (alone, rebuilt, reweighted))
    met = max(max(p.waits, default=0.0) for p in (rebuilt, reweighted)) <= TARGET_WAIT
    during = {None: "the rebuild and the weight change", "rebuild": "the rebuild"}
    print(
        f"target (a till waits <= 1 s for the ledger lock during"
        f" {during.get(args.only, 'the weight change')}; longest {longest * 1000:,.0f} ms):"
        f" {'met' if met else 'NOT met'}"
    )
    print(f"check (totals equal a rebuild from scratch): {'met' if equal else 'NOT met'}")
    return met and equal


def main() -> None:
    args = parse()
    if args.job:
        asyncio.run(job(args))
        return
    if not args.database_url or not args.database_url.startswith("postgres"):
        raise SystemExit("--database-url must name the PostgreSQL data set of make_dataset.py")
    if "TIANTIAN_NOW" not in os.environ:
        raise SystemExit("set TIANTIAN_NOW to the data set's today (2026-11-20T12:00:00+08:00)")
    started = time.perf_counter()
    url = asyncio.run(copy_dataset(args.database_url, args.copy))
    print(f"copy {args.copy}: made in {time.perf_counter() - started:.0f} s", flush=True)
    ok = False
    try:
        started = time.perf_counter()
        cli(url, "migrate")
        print(f"  migrated in {time.perf_counter() - started:.0f} s", flush=True)
        os.environ["DATABASE_URL"] = url
        ok = asyncio.run(run(args, url))
    finally:
        if not args.keep:
            asyncio.run(drop_copy(url))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
