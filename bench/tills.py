"""One receipt at a time, as tills send them: ``--tills`` tills, each in a store of its
own (its key, its advisor, its members), post single receipts to
``POST /pos/v1/purchases`` at once, on PostgreSQL beside a ceiling of plain asyncpg
doing the same writes one receipt a transaction over as many connections, and on
SQLite (the embedded default), where no till may get an error. Used by ingest.py.

One store per till: a store's day and its advisor's totals are one row each, which
every receipt of that store updates, so sixteen tills of one store queue behind each
other on those rows whoever writes them (the ceiling too)."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import ingest
import msgspec
from ingest import SKUS, Receipt


def till_receipts(n: int, tills: int) -> list[list[Receipt]]:
    """Each till's receipts: its own advisor and members (a phone range a till)."""
    per_till = []
    for t in range(tills):
        receipts = ingest.make_receipts(n // tills, [f"ATILL{t:02d}"], seed=100 + t)
        for r in receipts:
            r.phone = f"1{3 + t // 10}{t % 10}{r.phone[3:]}"
            r.receipt_id = f"T{t:02d}{r.receipt_id}"
        per_till.append(receipts)
    return per_till


def store_rows(tills: int) -> list[tuple[str, str, str, str]]:
    """(store code, advisor code, advisor name, advisor phone) of each till's store."""
    return [(f"STILL{t:02d}", f"ATILL{t:02d}", f"收银{t}", f"1390000{t:04d}") for t in range(tills)]


async def seed_tills(url: str, tills: int) -> dict[str, int]:
    """The tills' stores and their advisors beside the bench store: advisor ids."""
    conn = await asyncpg.connect(url)
    try:
        ids = {}
        for store, advisor, name, phone in store_rows(tills):
            store_id = await conn.fetchval(
                "INSERT INTO store (code, name, region, timezone)"
                " VALUES ($1, $1, '华南', 'Asia/Shanghai') RETURNING id",
                store,
            )
            ids[advisor] = await conn.fetchval(
                "INSERT INTO advisor (code, store, name, phone, active)"
                " VALUES ($1, $2, $3, $4, true) RETURNING id",
                advisor,
                store_id,
                name,
                phone,
            )
        return ids
    finally:
        await conn.close()


def keys_of(url: str, tills: int) -> list[str]:
    return [
        ingest.run_cli(url, "pos-key", "create", "--store", store).split()[-1]
        for store, *_ in store_rows(tills)
    ]


async def post_singles(base: str, keys: list[str], per_till: list[list[Receipt]]) -> float:
    """Every till posts its receipts one at a time, all tills at once; the seconds
    taken. Any answer but 201 is an error the bench reports (and fails on)."""
    statuses: Counter[int] = Counter()

    async def till(key: str, receipts: list[Receipt]) -> None:
        headers = {"X-API-Key": key, "content-type": "application/json"}
        bodies = [msgspec.json.encode(r.json()) for r in receipts]
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            for body in bodies:
                r = await client.post("/pos/v1/purchases", content=body, headers=headers)
                statuses[r.status_code] += 1

    started = time.perf_counter()
    await asyncio.gather(*[till(k, rs) for k, rs in zip(keys, per_till, strict=True)])
    elapsed = time.perf_counter() - started
    if statuses != Counter({201: sum(len(rs) for rs in per_till)}):
        raise SystemExit(f"tills got answers other than 201: {dict(statuses)}")
    return elapsed


async def ceiling_singles(
    url: str, advisor_ids: dict[str, int], per_till: list[list[Receipt]], tasks: dict[str, Any]
) -> float:
    """The same rows by plain asyncpg, one receipt a transaction, a connection a till."""
    conns = [await asyncpg.connect(url) for _ in per_till]
    try:
        products = {
            r["sku"]: (r["id"], r["points_eligible"])
            for r in await conns[0].fetch("SELECT id, sku, points_eligible FROM product")
        }
        stores = {
            r["code"]: r["store"] for r in await conns[0].fetch("SELECT code, store FROM advisor")
        }

        async def till(conn: asyncpg.Connection, receipts: list[Receipt]) -> None:
            members: dict[str, int] = {}
            for r in receipts:
                async with conn.transaction():
                    await ingest.ceiling_batch(
                        conn, stores[r.advisor], products, advisor_ids, members, [r]
                    )
                    await ingest.insert_tasks(conn, members, tasks.get(r.receipt_id, []))

        started = time.perf_counter()
        await asyncio.gather(*[till(c, rs) for c, rs in zip(conns, per_till, strict=True)])
        return time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()


def seed_sqlite(path: Path, tills: int) -> None:
    """The bench store, its advisors and the products in a migrated SQLite file."""
    with sqlite3.connect(path) as db:
        store_id = db.execute(
            "INSERT INTO store (code, name, region, timezone)"
            " VALUES ('SBENCH', '压测门店', '华南', 'Asia/Shanghai') RETURNING id"
        ).fetchone()[0]
        for i in range(4):
            db.execute(
                "INSERT INTO advisor (code, store, name, phone, active) VALUES (?, ?, ?, ?, 1)",
                (f"ABENCH{i}", store_id, f"顾问{i}", f"1380000{i:04d}"),
            )
        for store, advisor, name, phone in store_rows(tills):
            sid = db.execute(
                "INSERT INTO store (code, name, region, timezone)"
                " VALUES (?, ?, '华南', 'Asia/Shanghai') RETURNING id",
                (store, store),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO advisor (code, store, name, phone, active) VALUES (?, ?, ?, ?, 1)",
                (advisor, sid, name, phone),
            )
        for sku, cat, stage, days, elig, _price in SKUS:
            db.execute(
                "INSERT INTO product (sku, name, category, stage, days_of_supply,"
                " points_eligible) VALUES (?, ?, ?, ?, ?, ?)",
                (sku, sku, cat, stage, days, int(elig)),
            )


async def on_sqlite(per_till: list[list[Receipt]]) -> float:
    """The same tills against the embedded SQLite default: the seconds taken."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tills.sqlite3"
        url = f"sqlite:///{path}"
        ingest.run_cli(url, "migrate")
        seed_sqlite(path, len(per_till))
        keys = keys_of(url, len(per_till))
        with ingest.serving(url) as base:
            seconds = await post_singles(base, keys, per_till)
        with sqlite3.connect(path) as db:
            made = db.execute("SELECT COUNT(*) FROM purchase").fetchone()[0]
            balance, ledger = db.execute(
                "SELECT (SELECT COALESCE(SUM(points_balance), 0) FROM member),"
                " (SELECT COALESCE(SUM(points), 0) FROM points_ledger)"
            ).fetchone()
        if made != sum(len(rs) for rs in per_till) or balance != ledger:
            raise SystemExit(f"SQLite: {made} purchases, balances {balance}, ledger {ledger}")
        return seconds
