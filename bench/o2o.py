"""O2O routing benchmark: 25,000 stores, 10,000 random orders.

    /work/main/.venv/bin/python bench/o2o.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Makes a fresh PostgreSQL database of its own (``tiantian_o2o_bench``, dropped and made
again), with 25,000 stores around 400 cities (80% taking orders, an advisor each),
50,000 members at random stores, then measures:

1. routing, as the order's transaction does it (``orders.services._route``: the member
   by phone, their home store if it takes orders, else the nearest store in reach by
   the bounding box on the partial position index and the haversine distance): p50 and
   p99 over ``--orders`` random addresses in and around the cities, a third of them
   from known members;
2. beside it, the floor: the bare nearest-store query (bounding box, squared degrees,
   no advisor check, no member) through plain asyncpg, for the same addresses;
3. the whole ``POST /o2o/v1/orders`` over HTTP against ``tiantian serve`` (routing, the
   new member, the order, its lines and history, the delivery task and its push, one
   transaction): p50 and p99 over ``--http-orders`` orders from ``--clients`` clients.

Target: p99 ≤ 20 ms for the whole POST.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TIANTIAN = [sys.executable, "-m", "advisor_api.cli"]
NOW = "2026-11-20T12:00:00+08:00"
NAME = "tiantian_o2o_bench"
TARGET_MS = 20.0
RADIUS_KM = 10.0

SEED = """
INSERT INTO store (id, code, name, region, timezone, latitude, longitude, o2o, created_at,
                   updated_at)
SELECT s, 'O' || lpad(s::text, 6, '0'), '门店' || s, c.region, 'Asia/Shanghai',
       c.lat + (random() - 0.5) * 0.3, c.lon + (random() - 0.5) * 0.36, random() < 0.8,
       now(), now()
FROM generate_series(1, $1::int) s
JOIN unnest($2::float8[], $3::float8[], $4::text[]) WITH ORDINALITY AS c(lat, lon, region, n)
  ON c.n = (s % array_length($2::float8[], 1)) + 1;
INSERT INTO advisor (id, code, store, name, phone, active, created_at, updated_at)
SELECT s, 'B' || lpad(s::text, 6, '0'), s, '顾问' || s, '136' || lpad(s::text, 8, '0'), true,
       now(), now()
FROM generate_series(1, $1::int) s;
INSERT INTO member (id, phone, name, home_store, owning_advisor, recruited_by, joined_at,
                    joined_on, do_not_contact, points_balance, created_at)
SELECT m, '135' || lpad(m::text, 8, '0'), '会员', h, h, h, now(), current_date, false, 0, now()
FROM (SELECT m, 1 + floor(random() * $1::int)::int AS h FROM generate_series(1, $2::int) m) x;
INSERT INTO product (sku, name, category, stage, days_of_supply, points_eligible, updated_at)
VALUES ('F1-800', '1段奶粉 800g', 'formula', 1, 12, true, now())
"""


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--name", default=NAME, help="the bench's own database (made afresh)")
    p.add_argument("--stores", type=int, default=25_000)
    p.add_argument("--cities", type=int, default=400)
    p.add_argument("--members", type=int, default=50_000)
    p.add_argument("--orders", type=int, default=10_000)
    p.add_argument("--http-orders", type=int, default=2_000)
    p.add_argument("--clients", type=int, default=2)
    return p.parse_args()


def db_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def fresh_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def cities(n: int, rng: random.Random) -> tuple[list[float], list[float], list[str]]:
    lats, lons, regions = [], [], []
    for _ in range(n):
        lat, lon = rng.uniform(20, 42), rng.uniform(102, 122)
        lats.append(lat)
        lons.append(lon)
        regions.append(("华南" if lat < 27 else "华东") if lon > 110 else "西南")
    return lats, lons, regions


async def seed(url: str, args: argparse.Namespace, rng: random.Random) -> list[tuple[float, float]]:
    lats, lons, regions = cities(args.cities, rng)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT setseed(0.42)")
        stores, advisors, members, product = SEED.strip().split(";\n")
        await conn.execute(stores, args.stores, lats, lons, regions)
        await conn.execute(advisors, args.stores)
        await conn.execute(members, args.stores, args.members)
        await conn.execute(product)
        for sequence, last in (
            ("store", args.stores),
            ("advisor", args.stores),
            ("member", args.members),
        ):
            await conn.execute(f"SELECT setval('{sequence}_id_seq', $1::int)", last)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return list(zip(lats, lons, strict=True))


def addresses(
    centres: list[tuple[float, float]], n: int, members: int, rng: random.Random
) -> list[tuple[str, float, float]]:
    """Phones and positions: a third known members, most within a city, some outside."""
    found = []
    for i in range(n):
        lat, lon = rng.choice(centres)
        spread = 0.12 if rng.random() < 0.9 else 0.6
        phone = f"135{rng.randint(1, members):08d}" if rng.random() < 1 / 3 else f"133{i:08d}"
        found.append(
            (phone, lat + rng.uniform(-spread, spread), lon + rng.uniform(-spread, spread))
        )
    return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def line(label: str, ms: list[float]) -> str:
    return f"  {label:<58} p50 {pct(ms, 0.5):6.2f} ms   p99 {pct(ms, 0.99):6.2f} ms"


async def routing(
    url: str, orders: list[tuple[str, float, float]]
) -> tuple[list[float], dict[str, int]]:
    from core.db import connection_pool
    from orders.services import Limits, _route

    limits, took, routes = (
        Limits(radius_km=RADIUS_KM),
        [],
        {"home_store": 0, "nearest": 0, "unrouted": 0},
    )
    async with connection_pool(max_size=2):
        for phone, lat, lon in orders[:50]:  # warm the pool and the caches
            await _route(phone, lat, lon, limits)
        for phone, lat, lon in orders:
            started = time.perf_counter()
            _spot, route, _member = await _route(phone, lat, lon, limits)
            took.append((time.perf_counter() - started) * 1000)
            routes[route] += 1
    return took, routes


FLOOR = (
    "SELECT id FROM store WHERE o2o AND latitude BETWEEN $1 AND $2"
    " AND longitude BETWEEN $3 AND $4"
    " ORDER BY (latitude - $5) ^ 2 + (longitude - $6) ^ 2 LIMIT 1"
)


async def floor(url: str, orders: list[tuple[str, float, float]]) -> tuple[list[float], str]:
    from orders.routing import bounding_box

    conn = await asyncpg.connect(url)
    try:
        statement = await conn.prepare(FLOOR)
        took = []
        for _phone, lat, lon in orders:
            box = bounding_box(lat, lon, RADIUS_KM)
            started = time.perf_counter()
            await statement.fetch(*box, lat, lon)
            took.append((time.perf_counter() - started) * 1000)
        _p, lat, lon = orders[0]
        plan = await conn.fetch("EXPLAIN " + FLOOR, *bounding_box(lat, lon, RADIUS_KM), lat, lon)
        indexes = sorted({w for r in plan for w in r[0].split() if w.startswith("store_")})
    finally:
        await conn.close()
    return took, ", ".join(indexes) or "no index"


async def http_floor(base: str, n: int, clients: int) -> list[float]:
    """The server's own floor on this machine now: ``GET /health/live`` (no database),
    from the same number of clients."""
    took: list[float] = []
    left = [n]

    async def worker(client: httpx.AsyncClient) -> None:
        while left[0] > 0:
            left[0] -= 1
            started = time.perf_counter()
            (await client.get("/health/live")).raise_for_status()
            took.append((time.perf_counter() - started) * 1000)

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await asyncio.gather(*[worker(client) for _ in range(clients)])
    return took


async def over_http(
    base: str, key: str, orders: list[tuple[str, float, float]], clients: int
) -> tuple[list[float], dict[int, int]]:
    bodies = [
        {
            "order_id": f"BENCH-{i:06d}",
            "member_phone": phone,
            "address": {"text": f"测试路 {i} 号", "latitude": lat, "longitude": lon},
            "lines": [{"sku": "F1-800", "quantity": 1, "amount": "358.00"}],
            "placed_at": NOW,
        }
        for i, (phone, lat, lon) in enumerate(orders)
    ]
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    took: list[float] = []
    statuses: dict[int, int] = {}
    headers = {"X-API-Key": key}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            r = await client.post("/o2o/v1/orders", json=body, headers=headers)
            took.append((time.perf_counter() - started) * 1000)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        (await client.get("/health")).raise_for_status()
        await asyncio.gather(*[worker(client) for _ in range(clients)])
    return took, statuses


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*TIANTIAN, *args], env=env, check=True, capture_output=True, text=True, cwd=REPO
    )
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "TIANTIAN_NOW": NOW, "TIANTIAN_ACCESS_LOG": "0"}
    server = subprocess.Popen(
        [*TIANTIAN, "serve", "--no-scheduler", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")


async def main() -> None:
    args = parse()
    url = db_url(args.admin_url, args.name)
    os.environ["DATABASE_URL"] = url
    os.environ["TIANTIAN_NOW"] = NOW
    await fresh_database(args.admin_url, args.name)
    try:
        await measure(args, url)
    finally:
        conn = await asyncpg.connect(args.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{args.name}" WITH (FORCE)')
        finally:
            await conn.close()


async def measure(args: argparse.Namespace, url: str) -> None:
    rng = random.Random(16)
    env = {**os.environ}
    await asyncio.to_thread(cli, env, "migrate")
    started = time.perf_counter()
    centres = await seed(url, args, rng)
    print(
        f"{args.stores:,} stores around {args.cities} cities, {args.members:,} members"
        f" ({time.perf_counter() - started:.1f} s to seed)"
    )
    orders = addresses(centres, args.orders, args.members, rng)
    took, routes = await routing(url, orders)
    floor_ms, index = await floor(url, orders)
    print(f"routing {len(orders):,} random orders within {RADIUS_KM:g} km:")
    print(line("routing (member, home store or nearest in reach)", took))
    print(line(f"floor: bare nearest-store query, asyncpg ({index})", floor_ms))
    shares = ", ".join(f"{k} {v / len(orders):.0%}" for k, v in routes.items())
    print(f"  routes: {shares}")

    key = (await asyncio.to_thread(cli, env, "channel-key", "create", "--name", "bench")).split()[
        -1
    ]
    server, base = serve(url)
    try:
        http_orders = addresses(centres, args.http_orders, args.members, random.Random(61))
        http_ms, statuses = await over_http(base, key, http_orders, args.clients)
        live_ms = await http_floor(base, len(http_orders), args.clients)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if set(statuses) != {201}:
        raise SystemExit(f"not every order was placed: {statuses}")
    print(f"POST /o2o/v1/orders, {len(http_orders):,} orders from {args.clients} clients:")
    print(line("whole request (routing, member, order, task, push; one transaction)", http_ms))
    print(line("floor: GET /health/live, same server and clients (no database)", live_ms))
    print(
        f"  mean {statistics.fmean(http_ms):.2f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    p99 = pct(http_ms, 0.99)
    met = "met" if p99 <= TARGET_MS else "NOT met"
    print(f"  target (p99 ≤ {TARGET_MS:g} ms for the whole POST): {met}")
    if p99 > TARGET_MS:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
