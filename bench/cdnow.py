"""The CDNOW purchase history imported as a chain's past, and replayed through the
till, side by side: the two must leave the same books.

    curl -LO http://www.brucehardie.com/datasets/CDNOW_master.zip && unzip CDNOW_master.zip
    .venv/bin/python bench/cdnow.py --file CDNOW_master.txt

CDNOW_master.txt (Fader and Hardie, 2001) is a real public purchase history: 23,570
customers who first bought in the first quarter of 1997, every purchase they made up
to June 1998, 69,659 lines of (customer, day, CDs, dollars). It is not shipped here
(it is not ours to redistribute); the command above fetches it.

As a chain's history: customer ``n`` is the member on phone ``139`` + ``n`` in
eight digits, at store ``n mod --stores``; each line is one receipt (``CD<line>``)
of one line: that many CDs of the SKU ``CD`` for that many yuan, at 12:00 store-local
on the day shifted by 28 years (so the history runs 2025-01 to 2026-06, before the
bench's today, 2026-11-20). Two fresh databases get the same registry (the stores,
an advisor each, the product), then:

- **import**: ``tiantian import purchases`` of the file in the contract's columns;
- **replay**: ``tiantian serve`` and each store's till posting its receipts in time
  order, 500 to a ``POST /pos/v1/purchases/batch``.

Then it compares, member by member, balance, lots, tier, join day and latest
purchase; store by store and period, the RN3 summaries (receipts, revenue, repeat
revenue, new members); and the points ledger's sum; and prints the time each path
took. Exits 2 when anything differs. ``--keep`` keeps the databases.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest  # the benches' shared server and database helpers

TZ = ZoneInfo("Asia/Shanghai")
YEARS = 28
COLUMNS = ["receipt_id", "store_code", "member_phone", "advisor_code", "purchased_at"]
COLUMNS += ["sku", "quantity", "amount"]


def shifted(day: str) -> date:
    d = date(int(day[:4]), int(day[4:6]), int(day[6:8]))
    return d.replace(year=d.year + YEARS)


def receipts_of(path: Path, stores: int) -> list[dict[str, Any]]:
    """Every CDNOW line as the receipt a till would send, with its store code."""
    found = []
    with open(path, encoding="ascii") as f:
        for n, line in enumerate(f, start=1):
            customer, day, cds, dollars = line.split()
            at = datetime.combine(shifted(day), datetime.min.time(), TZ) + timedelta(hours=12)
            found.append(
                {
                    "store": f"CD{int(customer) % stores:03d}",
                    "receipt_id": f"CD{n:05d}",
                    "member_phone": f"139{int(customer):08d}",
                    "purchased_at": at.isoformat(),
                    "lines": [{"sku": "CD", "quantity": int(cds), "amount": dollars}],
                }
            )
    return found


def write_files(folder: Path, receipts: list[dict[str, Any]], stores: int) -> None:
    with open(folder / "stores.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "region", "timezone"])
        w.writerows([f"CD{s:03d}", f"唱片店{s}", "华东", "Asia/Shanghai"] for s in range(stores))
    with open(folder / "advisors.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "phone", "store_code"])
        w.writerows([f"CDA{s:03d}", f"店员{s}", f"137{s:08d}", f"CD{s:03d}"] for s in range(stores))
    with open(folder / "products.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "name", "category", "points_eligible"])
        w.writerow(["CD", "唱片", "other", "true"])
    # A till export: by store, then time (a receipt's lines adjacent: one line each).
    ordered = sorted(receipts, key=lambda r: (r["store"], r["purchased_at"], r["receipt_id"]))
    with open(folder / "purchases.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in ordered:
            line = r["lines"][0]
            w.writerow(
                [r["receipt_id"], r["store"], r["member_phone"], "", r["purchased_at"]]
                + [line[k] for k in ("sku", "quantity", "amount")]
            )


def registry(url: str, folder: Path) -> None:
    ingest.run_cli(url, "migrate")
    for kind in ("stores", "advisors", "products"):
        ingest.run_cli(url, "import", kind, str(folder / f"{kind}.csv"))


async def replay(url: str, receipts: list[dict[str, Any]], stores: int) -> tuple[float, int]:
    """Every store's till catches up in time order, a batch of 500 at a time, four
    tills at once. Returns the seconds taken and the receipts refused."""
    keys = {
        f"CD{s:03d}": ingest.run_cli(url, "pos-key", "create", "--store", f"CD{s:03d}").split()[-1]
        for s in range(stores)
    }
    by_store: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(receipts, key=lambda r: (r["purchased_at"], r["receipt_id"])):
        by_store[r["store"]].append({k: v for k, v in r.items() if k != "store"})
    refused = 0
    gate = asyncio.Semaphore(4)

    async def till(client: httpx.AsyncClient, code: str) -> None:
        nonlocal refused
        async with gate:
            todo = by_store[code]
            for i in range(0, len(todo), 500):
                body = msgspec.json.encode({"purchases": todo[i : i + 500]})
                r = await client.post(
                    "/pos/v1/purchases/batch",
                    content=body,
                    headers={"X-API-Key": keys[code], "content-type": "application/json"},
                )
                if r.status_code != 200:
                    raise SystemExit(f"the till's batch got {r.status_code}: {r.text[:300]}")
                refused += sum(1 for x in r.json()["results"] if x["status"] == "rejected")

    with ingest.serving(url) as base:
        async with httpx.AsyncClient(base_url=base, timeout=600) as client:
            started = time.perf_counter()
            await asyncio.gather(*[till(client, code) for code in sorted(by_store)])
            return time.perf_counter() - started, refused


BOOKS = {
    "members": "SELECT phone, points_balance, tier, tier_year, joined_on, home_store_code,"
    " last_purchased_at, last_purchase_on FROM (SELECT m.*, s.code AS home_store_code"
    " FROM member m JOIN store s ON s.id = m.home_store) x ORDER BY phone",
    "lots": "SELECT m.phone, l.month, l.expires_on, l.earned, l.used, l.expired"
    " FROM points_lot l JOIN member m ON m.id = l.member ORDER BY 1, 2, 3",
    "RN3 and store summaries": "SELECT s.code, d.period, d.receipts, d.revenue_fen,"
    " d.repeat_fen, d.new_members FROM store_day d JOIN store s ON s.id = d.store"
    " WHERE d.receipts <> 0 OR d.new_members <> 0 ORDER BY 1, 2",
    "purchases": "SELECT s.code, p.receipt_id, m.phone, p.points_earned,"
    " p.points_balance_after, p.repeat, p.total_fen FROM purchase p"
    " JOIN store s ON s.id = p.store JOIN member m ON m.id = p.member ORDER BY 1, 2",
    "ledger": "SELECT COUNT(*), SUM(points) FROM points_ledger",
}


async def books(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in BOOKS.items()}
    finally:
        await conn.close()


def compare(mine: dict[str, list[Any]], theirs: dict[str, list[Any]]) -> bool:
    same = True
    for name in BOOKS:
        a, b = mine[name], theirs[name]
        equal = a == b
        same &= equal
        print(f"  {name:<24} {len(a):>8,} rows  {'equal' if equal else 'DIFFERENT'}")
        if not equal:
            for x, y in zip(a, b, strict=False):
                if x != y:
                    print(f"    import {x}\n    replay {y}")
                    break
            else:
                print(f"    {len(a)} rows against {len(b)}")
    return same


def import_history(url: str, folder: Path) -> float:
    """``tiantian import purchases`` of the file: the seconds it took."""
    env = {**os.environ, "DATABASE_URL": url, "TIANTIAN_NOW": ingest.BENCH_NOW.isoformat()}
    started = time.perf_counter()
    done = subprocess.run(
        [*ingest.TIANTIAN, "import", "purchases", str(folder / "purchases.csv")],
        env=env,
        cwd=ingest.REPO,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - started
    summary = done.stdout.splitlines()[0] if done.stdout else done.stderr[-300:]
    print(f"  import   {took:6.1f} s  {summary}")
    return took


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--file", type=Path, required=True, help="CDNOW_master.txt")
    p.add_argument("--stores", type=int, default=20)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    receipts = receipts_of(args.file, args.stores)
    names = ("tiantian_cdnow_import", "tiantian_cdnow_replay")
    urls = [ingest.db_url(args.admin_url, n) for n in names]
    customers = len({r["member_phone"] for r in receipts})
    print(f"CDNOW: {len(receipts):,} receipts of {customers:,} customers at {args.stores} stores")
    with tempfile.TemporaryDirectory(prefix="tiantian-cdnow-") as tmp:
        folder = Path(tmp)
        write_files(folder, receipts, args.stores)
        for name, url in zip(names, urls, strict=True):
            asyncio.run(ingest.drop_db(args.admin_url, name))
            asyncio.run(ingest.create_db(args.admin_url, name))
            registry(url, folder)
        imported = import_history(urls[0], folder)
    replayed, refused = asyncio.run(replay(urls[1], receipts, args.stores))
    print(f"  replay   {replayed:6.1f} s  (the till refused {refused})")
    print(
        f"  receipts a second: import {len(receipts) / imported:,.0f},"
        f" the till's replay {len(receipts) / replayed:,.0f}"
    )
    print("the books, import against replay:")
    same = compare(asyncio.run(books(urls[0])), asyncio.run(books(urls[1])))
    if not args.keep:
        for name in names:
            asyncio.run(ingest.drop_db(args.admin_url, name))
    print("result: the import leaves the books of the till's replay:", "yes" if same else "NO")
    if not same:
        raise SystemExit(2)


if __name__ == "__main__":
    main()
