"""Member search benchmark (找会员) on the national data set of make_dataset.py.

    .venv/bin/python bench/make_dataset.py --database-url postgresql://…/tiantian_big
    .venv/bin/python bench/members.py --database-url postgresql://…/tiantian_big

Serves the app (one worker, no scheduler, the server of bench/daily.py), signs in
advisors spread over the country, and times ``GET /advisor/v1/members?q=`` from one
connection and from several: by the phone's last four digits, by a common surname
(many hits: the first page of 20 in name order) and by a whole phone; beside the
floor of the same server answering a constant JSON body (``/bench/plain``). Shows
PostgreSQL's plan for the two store-scoped searches (each a range of its index),
and whether the target (by tail, one connection: p50 ≤ 20 ms, p99 ≤ 100 ms) is met.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import daily  # noqa: E402  (the server and the load loop are shared)
from leaderboard import advisors_across_the_country, figures  # noqa: E402


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--date", type=date.fromisoformat, help="the domain's day (default today)")
    p.add_argument("--advisors", type=int, default=100, help="advisors signed in")
    p.add_argument("--clients", type=int, default=8, help="connections for the loaded runs")
    p.add_argument("--seconds", type=float, default=10.0)
    return p.parse_args()


async def sample(url: str) -> tuple[int, str, str, str]:
    """(members, a phone's tail, the commonest surname, a whole phone) of the data set."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        members = await conn.fetchval("SELECT COUNT(*) FROM member")
        phone = await conn.fetchval("SELECT phone FROM member ORDER BY id LIMIT 1 OFFSET $1", 7)
        surname = await conn.fetchval(
            "SELECT substr(name, 1, 1) FROM member GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1"
        )
        return int(members), phone[-4:], surname, phone
    finally:
        await conn.close()


async def plans(url: str, tail: str, surname: str) -> list[tuple[str, str]]:
    """The planner's first line for each store-scoped search, on the busiest store."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        store = await conn.fetchval(
            "SELECT home_store FROM member GROUP BY home_store ORDER BY COUNT(*) DESC LIMIT 1"
        )
        by_tail = await conn.fetch(
            "EXPLAIN SELECT id FROM member m WHERE m.home_store = $1"
            " AND substr(m.phone, 8, 4) = $2 ORDER BY m.name, m.id LIMIT 21",
            store,
            tail,
        )
        by_name = await conn.fetch(
            'EXPLAIN SELECT id FROM member m WHERE m.home_store = $1 AND m.name COLLATE "C" >= $2'
            ' AND m.name COLLATE "C" < $3 ORDER BY m.name COLLATE "C", m.id LIMIT 21',
            store,
            surname,
            surname + "\U0010ffff",
        )
    finally:
        await conn.close()
    scanned = [
        (label, next((r[0].strip() for r in rows if "Scan" in r[0]), rows[0][0]))
        for label, rows in (("by tail", by_tail), ("by name", by_name))
    ]
    return scanned


async def measure(
    port: int, path: str, tokens: list[str], clients: int, seconds: float
) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, req/s, errors) after a short warm-up."""
    await daily.load(port, path, tokens, clients, 1)
    latencies: list[float] = []
    rps, _, errors = await daily.load(port, path, tokens, clients, seconds, latencies)
    p50, p99 = figures(latencies)
    return p50, p99, rps, errors


async def run(args: argparse.Namespace, day: date) -> None:
    members, tail, surname, phone = await sample(args.database_url)
    for label, plan in await plans(args.database_url, tail, surname):
        print(f"  plan {label}: {plan}")
    port, server = await daily.start_server(args.database_url, day)
    try:
        codes = await advisors_across_the_country(args.database_url, args.advisors)
        tokens = await daily.sign_in(args.database_url, codes, f"http://127.0.0.1:{port}")
        print(
            f"{members:,} members, {len(tokens)} advisors signed in, one server worker,"
            f" {args.seconds:.0f} s a measurement"
        )
        cases = [
            ("floor: /bench/plain", "/bench/plain", 1),
            ("by tail", f"/advisor/v1/members?q={tail}", 1),
            (f"by tail, {args.clients} connections", f"/advisor/v1/members?q={tail}", args.clients),
            (f"by name {surname}…, first page", f"/advisor/v1/members?q={quote(surname)}", 1),
            ("by whole phone", f"/advisor/v1/members?q={phone}", 1),
            (f"floor, {args.clients} connections", "/bench/plain", args.clients),
        ]
        results = {}
        for label, path, clients in cases:
            p50, p99, rps, errors = await measure(port, path, tokens, clients, args.seconds)
            results[label] = (p50, p99)
            print(
                f"  {label:<32} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
                f"  {rps:7,.0f} req/s  errors {errors}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50, p99 = results["by tail"]
    met = p50 <= 20 and p99 <= 100
    print(
        f"  target (by tail, one connection: p50 ≤ 20 ms, p99 ≤ 100 ms): {'met' if met else 'NOT met'}"
    )
    if not met:
        raise SystemExit(1)


def main() -> None:
    args = parse()
    if not args.database_url or not args.database_url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--database-url must name the PostgreSQL data set of make_dataset.py")
    os.environ["DATABASE_URL"] = args.database_url
    from core import clock

    day = args.date or clock.today(clock.zone("Asia/Shanghai"))
    asyncio.run(run(args, day))


if __name__ == "__main__":
    main()
