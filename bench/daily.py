"""Daily-run and daily-list benchmark on the national data set of make_dataset.py.

    .venv/bin/python bench/make_dataset.py --database-url postgresql://…/tiantian_big
    .venv/bin/python bench/daily.py --database-url postgresql://…/tiantian_big

Part 1 takes away the tasks the daily run raises whose window is open on the day
(with their outcomes, history and score facts; the data set's history of tasks
stays), then times ``run_daily`` for the data set's today (the first run, which
raises everything open in each rule's window), again for the same day (a rerun: must
make nothing), and for the next day (a steady-state day).
Beside it, one hand-written INSERT … SELECT makes the same stage_up rows into a
scratch table: the floor for that kind of statement. Prints times and ratios.

Part 1b times the daily job's points-expiry pass: the day the data set's oldest lots
have lapsed (18 months on), one set-based pass over every member, beside the floor
of the same three writes by hand (ledger rows, balances, lots); both are undone after.

Part 2 serves the app (one worker, no scheduler) with a plain JSON endpoint mounted
in the same process, signs in advisors who have work that day, and loads
``GET /advisor/v1/today`` from 64 keep-alive connections, then the plain endpoint
the same way; prints requests per second and p99 for both and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_PASSWORD = "bench-password-1"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument(
        "--date", type=date.fromisoformat, help="the run's day (default: the domain's today)"
    )
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--advisors", type=int, default=200, help="advisors signed in for the load")
    p.add_argument("--skip-run", action="store_true", help="keep the tasks; only the load test")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args()


# --- part 1: the daily run ---------------------------------------------------

# The kinds the daily run raises (tasks.daily); the others come from events.
CALENDAR_KINDS = ("stage_up", "milestone", "reactivate", "campaign")

# The least a statement making these rows can do: the same rows into the same table,
# idempotent by the same key (a daily job must be), nothing shipped back.

FLOOR = """
INSERT INTO task (kind, member, store, assignee, topic, reason, script, anchor_on, due_on,
                   expires_on, priority, status, cause, dedupe_key, created_at, updated_at)
SELECT 'stage_up', m.id, m.home_store,
       CASE WHEN a.active AND a.store = m.home_store THEN a.id END,
       s.months::text, '宝宝满' || s.months || '个月,准备转段', $2,
       (b.birth_date + make_interval(months => s.months))::date,
       (b.birth_date + make_interval(months => s.months))::date - 7,
       (b.birth_date + make_interval(months => s.months))::date + 14,
       1, 'open', 'baby:' || b.id, 'stage_up:' || b.id || ':' || s.months, now(), now()
FROM (VALUES (6, 1), (12, 2), (36, 3)) AS s(months, lower_stage)
JOIN baby b ON b.birth_date BETWEEN ($1::date - make_interval(months => s.months) - interval '15 days')::date
                             AND ($1::date - make_interval(months => s.months) + interval '8 days')::date
JOIN member m ON m.id = b.member
LEFT JOIN advisor a ON a.id = m.owning_advisor
WHERE NOT m.do_not_contact
  AND (b.birth_date + make_interval(months => s.months))::date BETWEEN $1::date - 14 AND $1::date + 7
  AND m.last_formula_stage = s.lower_stage
ON CONFLICT (dedupe_key) DO NOTHING
"""


async def daily_part(url: str, day: date) -> None:
    import asyncpg

    from core.db import connection_pool
    from tasks.daily import run_daily
    from tasks.playbook import DEFAULT_RULES

    conn = await asyncpg.connect(url)
    # The tasks the run would raise today go, by DELETE (their summaries follow by
    # trigger; TRUNCATE would take the whole score ledger, which bench/leaderboard.py
    # reads): the calendar's kinds whose window is open on the day, and what refers
    # to them first.
    await conn.execute(
        "CREATE TEMP TABLE gone AS SELECT id FROM task WHERE kind = ANY($1::text[])"
        " AND due_on <= $2 AND expires_on >= $2",
        list(CALENDAR_KINDS),
        day,
    )
    await conn.execute("DELETE FROM score_fact WHERE task IN (SELECT id FROM gone)")
    await conn.execute(
        "DELETE FROM outcome WHERE task IN (SELECT id FROM gone)"
        " OR callback_task IN (SELECT id FROM gone)"
    )
    await conn.execute("DELETE FROM task_event WHERE task IN (SELECT id FROM gone)")
    await conn.execute("DELETE FROM task WHERE id IN (SELECT id FROM gone)")
    await conn.execute("DROP TABLE gone")
    await conn.execute("VACUUM ANALYZE task, task_summary")
    members = await conn.fetchval("SELECT COUNT(*) FROM member")
    tasks = await conn.fetchval("SELECT COUNT(*) FROM task")
    print(f"daily run over {members:,} members ({tasks:,} tasks already) for {day}")

    # The floor first, into the same table with the same indexes, constraints
    # and triggers, then rolled back: the least any statement making these rows costs.
    floor_tx = conn.transaction()
    await floor_tx.start()
    started = time.perf_counter()
    status = await conn.execute(FLOOR, day, DEFAULT_RULES["stage_up"][3])
    floor = time.perf_counter() - started
    await floor_tx.rollback()
    floor_rows = int(status.split()[-1])

    async with connection_pool():
        timings = []
        for label, run_day in (
            ("first run", day),
            ("rerun", day),
            ("next day", day + timedelta(days=1)),
        ):
            started = time.perf_counter()
            report = await run_daily(run_day)
            elapsed = time.perf_counter() - started
            timings.append(elapsed)
            made = ", ".join(f"{k} {v:,}" for k, v in sorted(report.created.items())) or "nothing"
            expired = sum(report.expired.values())
            print(f"  {label:<10} {elapsed:6.2f} s  created: {made}; expired {expired:,}")
            if label == "first run":
                stage_up = report.created.get("stage_up", 0)
                stage_up_s = report.seconds.get("stage_up", 0.0)

    await conn.close()
    print(
        f"  floor: one hand-written INSERT … SELECT of the same stage_up rows: {floor:.2f} s"
        f" ({floor_rows:,} rows; the run made {stage_up:,})"
    )
    print(
        f"  the run's own stage_up statement: {stage_up_s:.2f} s, {stage_up_s / floor:.1f}× the floor"
    )
    print(
        f"  whole first run ÷ floor: {timings[0] / floor:.1f}×   "
        f"next day ÷ floor: {timings[2] / floor:.1f}×"
    )
    met = timings[0] <= 15 and timings[0] <= 3 * floor
    print(f"  target (≤ 15 s, ≤ 3× the floor): {'met' if met else 'NOT met'}")


# --- part 1b: points lapsing ----------------------------------------------------

EXPIRY_FLOOR = (
    "INSERT INTO points_ledger (member, store, kind, points, lot, bonus_points, occurred_at,"
    " occurred_on, booked_month, created_at) SELECT l.member, m.home_store, 'expire',"
    " -(l.earned - l.used - l.expired), l.id, 0, now(), l.expires_on + 1,"
    " to_char(l.expires_on + 1, 'YYYY-MM'), now() FROM points_lot l JOIN member m"
    " ON m.id = l.member WHERE l.earned > l.used + l.expired AND l.expires_on < $1",
    "UPDATE member SET points_balance = points_balance - x.points FROM (SELECT member,"
    " SUM(earned - used - expired) AS points FROM points_lot WHERE earned > used + expired"
    " AND expires_on < $1 GROUP BY member) x WHERE member.id = x.member",
    "UPDATE points_lot SET expired = expired + (earned - used - expired)"
    " WHERE earned > used + expired AND expires_on < $1",
)
UNDO_EXPIRY = (
    "UPDATE member SET points_balance = points_balance - x.points FROM (SELECT member,"
    " SUM(points) AS points FROM points_ledger WHERE kind = 'expire' GROUP BY member) x"
    " WHERE member.id = x.member",
    "UPDATE points_lot SET expired = 0 WHERE expired > 0",
    "DELETE FROM points_ledger WHERE kind = 'expire'",
)


async def expiry_part(url: str, day: date) -> None:
    import asyncpg

    from core.db import connection_pool
    from core.periods import add_months
    from members.lots import expire_points
    from members.queries import timezones_in_use

    conn = await asyncpg.connect(url)
    try:
        # The day after the data set's two oldest months of lots lapse (its lots expire
        # two years on, so no day near ``day`` lapses any).
        oldest = await conn.fetchval(
            "SELECT min(expires_on) FROM points_lot WHERE earned > used + expired"
        )
        lapse_day = add_months(oldest, 1) + timedelta(days=1) if oldest else day
        lots = await conn.fetchval(
            "SELECT COUNT(*) FROM points_lot WHERE earned > used + expired AND expires_on < $1",
            lapse_day,
        )
        async with connection_pool():
            started = time.perf_counter()
            expired = 0
            for zone in await timezones_in_use():
                expired += await expire_points(lapse_day, zone)
            elapsed = time.perf_counter() - started
        for statement in UNDO_EXPIRY:
            await conn.execute(statement)
        floor_tx = conn.transaction()
        await floor_tx.start()
        started = time.perf_counter()
        for statement in EXPIRY_FLOOR:
            await conn.execute(statement, lapse_day)
        floor = time.perf_counter() - started
        await floor_tx.rollback()
    finally:
        await conn.close()
    print(f"points expiry pass for {lapse_day}: {lots:,} lots, {expired:,} points lapsed")
    print(f"  the daily job's pass:   {elapsed:6.2f} s")
    print(
        f"  floor (the same writes by hand): {floor:6.2f} s   ratio {elapsed / max(floor, 1e-9):.1f}×"
    )
    met = elapsed <= 3 * floor + 1
    print(f"  target (one set-based pass, ≤ 3× the floor): {'met' if met else 'NOT met'}")


# --- part 2: the list under load ---------------------------------------------


def serve(port: int) -> None:
    """The app with a plain JSON endpoint beside it, in one process and one worker."""
    import uvicorn
    from litestar import get

    from advisor_api.app import create_app

    @get("/bench/plain", exclude_from_auth=True)
    async def plain() -> dict[str, Any]:
        return {
            "date": "2026-11-20",
            "counts": {"due": 3, "overdue": 1, "done_today": 0},
            "cards": [],
        }

    app = create_app(scheduler=False, extra_routes=[plain])
    # One access line per request would swamp the figures this prints.
    logging.getLogger("tiantian.access").setLevel(logging.WARNING)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )


async def sign_in_advisors(url: str, day: date, count: int, base: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        codes = [
            r["code"]
            for r in await conn.fetch(
                "SELECT a.code FROM task t JOIN advisor a ON a.id = t.assignee WHERE t.status = 'open'"
                " AND t.due_on <= $1 AND t.expires_on >= $1 GROUP BY a.code ORDER BY COUNT(*) DESC LIMIT $2",
                day,
                count,
            )
        ]
    finally:
        await conn.close()
    return await sign_in(url, codes, base)


async def sign_in(url: str, codes: list[str], base: str) -> list[str]:
    """Bearer tokens of these advisors, making their logins first where missing."""
    import asyncpg
    import httpx

    from core.db import connection_pool
    from members import accounts

    conn = await asyncpg.connect(url)
    try:
        have = {
            r["phone"]
            for r in await conn.fetch(
                "SELECT u.phone FROM user_account u JOIN advisor a ON a.id = u.advisor"
                " WHERE a.code = ANY($1::text[])",
                codes,
            )
        }
        phones = {
            r["code"]: r["phone"]
            for r in await conn.fetch(
                "SELECT code, phone FROM advisor WHERE code = ANY($1::text[])", codes
            )
        }
    finally:
        await conn.close()
    async with connection_pool():
        for code in codes:
            if phones[code] not in have:
                try:
                    await accounts.create_user(
                        "advisor", phones[code], BENCH_PASSWORD, advisor_code=code
                    )
                except Exception as exc:  # a shared phone in the synthetic set: skip that advisor
                    print(f"  (skipped {code}: {exc})")
    tokens = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for code in codes:
            r = await client.post(
                "/auth/login", json={"phone": phones[code], "password": BENCH_PASSWORD}
            )
            if r.status_code == 200:
                tokens.append(r.json()["access_token"])
    return tokens


async def load(
    port: int,
    path: str,
    tokens: list[str],
    clients: int,
    seconds: float,
    latencies: list[float] | None = None,
) -> tuple[float, float, int]:
    """Keep-alive HTTP/1.1 from ``clients`` connections for ``seconds``: (req/s, p99 ms,
    errors); each request's seconds are added to ``latencies`` when given."""
    latencies = [] if latencies is None else latencies
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        token = tokens[n % len(tokens)] if tokens else ""
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*[client(n) for n in range(clients)])
    elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    return len(latencies) / elapsed, p99, errors


async def start_server(
    url: str, day: date, **extra_env: str
) -> tuple[int, subprocess.Popen[bytes]]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TIANTIAN_NOW": f"{day}T10:00:00+08:00",
        "TIANTIAN_LOGINS_PER_MINUTE": "100000",  # the bench signs everyone in from here
        **extra_env,
    }
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port)], env=env)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    return port, server


async def load_part(url: str, day: date, args: argparse.Namespace) -> None:
    path = f"/advisor/v1/today?date={day}"
    port, server = await start_server(url, day)
    try:
        tokens = await sign_in_advisors(url, day, args.advisors, f"http://127.0.0.1:{port}")
        print(
            f"GET /advisor/v1/today: {len(tokens)} advisors with work on {day}, "
            f"{args.clients} connections, {args.seconds:.0f} s each"
        )
        await load(port, path, tokens, args.clients, 2)  # warm-up
        today = await load(port, path, tokens, args.clients, args.seconds)
        plain = await load(port, "/bench/plain", [], args.clients, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The same list computed on every request, for the record: what a cache miss costs.
    port, server = await start_server(url, day, TIANTIAN_LIST_CACHE_SECONDS="0")
    try:
        uncached = await load(port, path, tokens, args.clients, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for label, (rps, p99, errors) in (
        ("today", today),
        ("plain", plain),
        ("today, no list cache", uncached),
    ):
        print(f"  {label:<22} {rps:8,.0f} req/s  p99 {p99:6.1f} ms  errors {errors}")
    ratio, bare = today[0] / plain[0], uncached[0] / plain[0]
    print(f"  today ÷ plain: {ratio:.0%}   uncached ÷ plain: {bare:.0%}")
    met = ratio >= 0.60 and today[1] <= 50 and today[2] == 0
    print(f"  target (cached ≥ 60% of plain, p99 ≤ 50 ms): {'met' if met else 'NOT met'}")
    met_bare = bare >= 0.25 and uncached[2] == 0
    print(f"  target (no list cache ≥ 25% of plain): {'met' if met_bare else 'NOT met'}")


def main() -> None:
    args = parse()
    if args.serve:
        serve(args.port)
        return
    if not args.database_url or not args.database_url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--database-url must name the PostgreSQL data set of make_dataset.py")
    os.environ["DATABASE_URL"] = args.database_url
    from core import clock

    day = args.date or clock.today(clock.zone("Asia/Shanghai"))
    if not args.skip_run:
        asyncio.run(daily_part(args.database_url, day))
        asyncio.run(expiry_part(args.database_url, day))
    asyncio.run(load_part(args.database_url, day, args))


if __name__ == "__main__":
    main()
