"""Push benchmark: 50,000 morning digests through firebase-admin to a stand-in FCM.

    .venv/bin/python bench/push.py [--database-url postgresql://…/tiantian_push_bench]

Makes a fresh PostgreSQL database (dropped and made again if it exists) with 50,000
advisors in 2,500 stores, one phone each and an open task each, then:

1. decides the digests: ``queue_digests`` (one INSERT … SELECT over the tasks);
2. starts the stand-in FCM server of the tests in a process of its own;
3. runs ``--dispatchers`` (2) ``tiantian push flush`` processes with ``PUSH_BACKEND=fcm``
   and ``FCM_ENDPOINT`` pointing at it: claims of 500 (``FOR UPDATE SKIP LOCKED``),
   ``messaging.send_each_async``, results recorded per device;

and prints messages per second. Target: ≥ 1,000 messages/s on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import date
from datetime import time as clock_time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The checkout's own code, whichever checkout this is (a worktree has no .venv).
TIANTIAN = [sys.executable, "-m", "advisor_api.cli"]
sys.path.insert(0, str(REPO))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tiantian_push_bench"
DAY = date(2026, 11, 20)

SEED = """
INSERT INTO store (id, code, name, region, timezone, created_at, updated_at)
SELECT s, 'P' || lpad(s::text, 5, '0'), '门店' || s, '华东', 'Asia/Shanghai', now(), now()
FROM generate_series(1, $1::int) s;
INSERT INTO advisor (id, code, store, name, phone, active, created_at, updated_at)
SELECT a, 'B' || lpad(a::text, 6, '0'), (a - 1) % $1::int + 1, '顾问' || a,
       '136' || lpad(a::text, 8, '0'), true, now(), now()
FROM generate_series(1, $2::int) a;
INSERT INTO member (id, phone, name, home_store, owning_advisor, recruited_by, joined_at,
                    joined_on, do_not_contact, points_balance, created_at)
SELECT a, '135' || lpad(a::text, 8, '0'), '会员', (a - 1) % $1::int + 1, a, a, now(),
       current_date, false, 0, now()
FROM generate_series(1, $2::int) a;
INSERT INTO task (kind, member, store, assignee, topic, reason, script, anchor_on, due_on,
                  expires_on, priority, status, cause, dedupe_key, created_at, updated_at)
SELECT 'followup_3d', a, (a - 1) % $1::int + 1, a, '', '回访', '', $3::date, $3::date,
       $3::date + 3, 3, 'open', '', 'bench:' || a, now(), now()
FROM generate_series(1, $2::int) a;
INSERT INTO device (advisor, token, platform, created_at, updated_at)
SELECT a, 'bench-token-' || a, 'android', now(), now() FROM generate_series(1, $2::int) a
WHERE $1::int > 0;
"""


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--advisors", type=int, default=50_000)
    p.add_argument("--stores", type=int, default=2_500)
    p.add_argument("--dispatchers", type=int, default=2, help="`tiantian push flush` processes")
    return p.parse_args()


async def fresh_database(url: str) -> None:
    import asyncpg

    admin_url, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{admin_url}/postgres")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def seed(url: str, stores: int, advisors: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        values = (stores, advisors, DAY)
        for statement in SEED.strip().split(";\n"):
            used = max(n for n in (1, 2, 3) if f"${n}" in statement)
            await conn.execute(statement, *values[:used])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run(args: argparse.Namespace) -> None:
    from core.db import connection_pool, fetch, in_write_transaction
    from notifications.services import queue_digests

    port = free_port()
    standin = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "tests" / "fcm_standin.py"),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert standin.stdout is not None
    await standin.stdout.readline()  # "stand-in FCM on …": it is listening
    try:
        async with connection_pool():
            started = time.perf_counter()
            queued = await in_write_transaction(
                lambda: queue_digests(DAY, clock_time(8, 30), ["Asia/Shanghai"])
            )
            print(
                f"decided {queued:,} digests in {time.perf_counter() - started:.2f} s"
                " (one INSERT … SELECT)"
            )
            # Dispatchers as a deployment runs them: `tiantian push flush` processes
            # sharing the outbox (claims skip each other's rows).
            env = {**os.environ, "PUSH_BACKEND": "fcm", "FCM_ENDPOINT": f"http://127.0.0.1:{port}"}
            started = time.perf_counter()
            workers = [
                await asyncio.create_subprocess_exec(
                    *TIANTIAN,
                    "push",
                    "flush",
                    env=env,
                    cwd=REPO,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                for _ in range(args.dispatchers)
            ]
            outputs = [(await w.communicate())[0].decode().strip() for w in workers]
            elapsed = time.perf_counter() - started
            sent = (await fetch("SELECT COUNT(*) AS n FROM push_delivery WHERE status = 'sent'"))[0]
            for n, out in enumerate(outputs, start=1):
                print(f"  dispatcher {n}: {out.splitlines()[-1]}")
            rate = int(sent["n"]) / elapsed
            print(
                f"{sent['n']:,} delivered and recorded by {args.dispatchers} dispatcher"
                f" process(es) in {elapsed:.1f} s: {rate:,.0f} messages/s"
            )
            print(f"  target (≥ 1,000 messages/s): {'met' if rate >= 1000 else 'NOT met'}")
    finally:
        standin.terminate()
        await standin.wait()


def main() -> None:
    args = parse()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("TIANTIAN_NOW", f"{DAY}T09:00:00+08:00")
    asyncio.run(fresh_database(args.database_url))
    subprocess.run(
        [*TIANTIAN, "migrate"],
        env={**os.environ},
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    asyncio.run(seed(args.database_url, args.stores, args.advisors))
    print(f"{args.advisors:,} advisors in {args.stores:,} stores, a phone and an open task each")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
