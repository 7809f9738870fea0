"""League-table benchmark on the national data set of make_dataset.py.

    .venv/bin/python bench/make_dataset.py --database-url postgresql://…/tiantian_big
    .venv/bin/python bench/leaderboard.py --database-url postgresql://…/tiantian_big

Serves the app (one worker, no scheduler, the same server as bench/daily.py), signs
in advisors spread over the country, and times, for the data set's current month:

- ``GET /v1/leaderboards/advisors?scope=national&limit=50`` (the top 50 and the
  caller's own ``me`` line, with rank changes against last month), first from one
  connection (latency alone) then from several (latency under load);
- the national and a regional store table, and the per-advisor store table;
- the standings of a month-long national league contest with its own weights;
- ``tiantian incentives rebuild --period`` for the month.

Prints p50 and p99 for each and whether the target (national advisor table, one
worker: p50 ≤ 20 ms, p99 ≤ 100 ms) is met.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import daily  # noqa: E402  (the server and the load loop are shared)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--date", type=date.fromisoformat, help="the domain's day (default today)")
    p.add_argument("--advisors", type=int, default=100, help="advisors signed in")
    p.add_argument("--clients", type=int, default=8, help="connections for the loaded run")
    p.add_argument("--seconds", type=float, default=10.0)
    return p.parse_args()


def figures(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


async def advisors_across_the_country(url: str, count: int) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        total = await conn.fetchval("SELECT COUNT(*) FROM advisor WHERE active")
        step = max(1, total // count)
        rows = await conn.fetch(
            "SELECT code FROM (SELECT code, row_number() OVER (ORDER BY id) AS n FROM advisor"
            " WHERE active) a WHERE n % $1 = 0 LIMIT $2",
            step,
            count,
        )
    finally:
        await conn.close()
    return [r["code"] for r in rows]


async def some_region(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        region: str = await conn.fetchval(
            "SELECT region FROM store GROUP BY region ORDER BY COUNT(*) DESC LIMIT 1"
        )
        return region
    finally:
        await conn.close()


async def measure(
    port: int, path: str, tokens: list[str], clients: int, seconds: float
) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, req/s, errors) after a short warm-up."""
    path = quote(path, safe="/?=&")  # a region's name is not ASCII
    await daily.load(port, path, tokens, clients, 1)
    latencies: list[float] = []
    rps, _, errors = await daily.load(port, path, tokens, clients, seconds, latencies)
    p50, p99 = figures(latencies)
    return p50, p99, rps, errors


async def contest_id(port: int, hq_token: str, month_first: date, month_last: date) -> int:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        r = await client.post(
            "/hq/v1/contests",
            headers={"Authorization": f"Bearer {hq_token}"},
            json={
                "name": "促销员先锋赛 (bench)",
                "kind": "league",
                "subject": "advisor",
                "scope": "national",
                "starts_on": month_first.isoformat(),
                "ends_on": month_last.isoformat(),
                "weights": {"new_member": "100", "points": "0.05"},
            },
        )
        r.raise_for_status()
        return int(r.json()["contest_id"])


async def hq_token(url: str, port: int) -> str:
    import httpx

    from core.db import connection_pool, fetch
    from members import accounts

    phone = "19999999999"
    async with connection_pool():
        if not await fetch("SELECT 1 FROM user_account WHERE phone = {}", phone):
            await accounts.create_user("hq", phone, daily.BENCH_PASSWORD)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        r = await client.post(
            "/auth/login", json={"phone": phone, "password": daily.BENCH_PASSWORD}
        )
        r.raise_for_status()
        token: str = r.json()["access_token"]
        return token


async def run(args: argparse.Namespace, day: date) -> None:
    from core.periods import month_of

    month = month_of(day)
    region = await some_region(args.database_url)
    port, server = await daily.start_server(args.database_url, day)
    try:
        base = f"http://127.0.0.1:{port}"
        codes = await advisors_across_the_country(args.database_url, args.advisors)
        tokens = await daily.sign_in(args.database_url, codes, base)
        hq = await hq_token(args.database_url, port)
        contest = await contest_id(port, hq, month.first, month.last)
        print(
            f"month {month.name}, {len(tokens)} advisors signed in, one server worker,"
            f" {args.seconds:.0f} s a measurement"
        )
        national = f"/v1/leaderboards/advisors?scope=national&period={month.name}&limit=50"
        cases = [
            ("advisors, national, top 50 + me", national, tokens, 1),
            (f"advisors, national, {args.clients} connections", national, tokens, args.clients),
            (
                f"advisors, region {region}",
                f"/v1/leaderboards/advisors?scope=region:{region}&period={month.name}&limit=50",
                tokens,
                1,
            ),
            (
                "stores, national, top 50 + mine",
                f"/v1/leaderboards/stores?scope=national&period={month.name}&limit=50",
                tokens,
                1,
            ),
            (
                f"stores, region {region}",
                f"/v1/leaderboards/stores?scope=region:{region}&period={month.name}&limit=50",
                tokens,
                1,
            ),
            (
                "stores, national, per advisor",
                f"/v1/leaderboards/stores?scope=national&period={month.name}&per_advisor=true",
                tokens,
                1,
            ),
            (
                "contest standings, national month",
                f"/v1/contests/{contest}/standings?limit=50",
                tokens,
                1,
            ),
        ]
        results = {}
        for label, path, who, clients in cases:
            p50, p99, rps, errors = await measure(port, path, who, clients, args.seconds)
            results[label] = (p50, p99)
            print(
                f"  {label:<40} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
                f"  {rps:7,.0f} req/s  errors {errors}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)

    p50, p99 = results["advisors, national, top 50 + me"]
    met = p50 <= 20 and p99 <= 100
    print(
        "  target (national advisor table: p50 ≤ 20 ms, p99 ≤ 100 ms):"
        f" {'met' if met else 'NOT met'}"
    )


def time_rebuild(url: str, day: date) -> None:
    from core.periods import month_of

    month = month_of(day).name
    env = {**os.environ, "DATABASE_URL": url, "TIANTIAN_NOW": f"{day}T10:00:00+08:00"}
    started = time.perf_counter()
    out = subprocess.run(
        [
            str(BENCH.parent / ".venv" / "bin" / "tiantian"),
            "incentives",
            "rebuild",
            "--period",
            month,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    print(f"  incentives rebuild --period {month}: {elapsed:.1f} s, the command included")
    for line in out.stdout.strip().splitlines():
        print(f"    {line}")


def main() -> None:
    args = parse()
    if not args.database_url or not args.database_url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--database-url must name the PostgreSQL data set of make_dataset.py")
    os.environ["DATABASE_URL"] = args.database_url
    from core import clock

    day = args.date or clock.today(clock.zone("Asia/Shanghai"))
    asyncio.run(run(args, day))
    time_rebuild(args.database_url, day)


if __name__ == "__main__":
    main()
