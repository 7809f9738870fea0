"""Import benchmark: a national chain's onboarding through ``tiantian import`` (stores,
advisors, products, 1,000,000 members with their babies, 3,000,000 purchases) beside
the floor of PostgreSQL ``COPY`` of the same rows into the same tables.

    .venv/bin/python bench/import.py                          # national size
    .venv/bin/python bench/import.py --stores 200 --members 5000 --purchases 15000

The CSV files are made by a generator compatible with ``bench/make_dataset.py`` (its
regions, catalogue and shapes: stores over seven regions, two advisors a store,
members at a home store with a baby, about three receipts a member since joining,
one or two lines each), written in the contract's columns, receipts by store and
time as a till export would be. Two fresh databases are made next to
``--admin-url`` (never ``tiantian_big``): one takes the import through the command
line, the other the floor: ``COPY`` of the rows the import writes (member, baby,
purchase, purchase_line, points_ledger, points_lot, with the ids and figures
precomputed here), triggers on, as the import has them. Figures: CSV rows per second for each, and the
ratio (target: the import at least 25% of ``COPY``). Checks: every line created, and
the imported balances add up to the points the floor computed. ``--keep`` keeps the
databases and files.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_dataset import PRODUCTS, REGIONS

REPO = Path(__file__).resolve().parent.parent
TIANTIAN = [sys.executable, "-m", "advisor_api.cli"]
TZ = ZoneInfo("Asia/Shanghai")
TARGET = 0.25
PURCHASE_COLUMNS = (
    "receipt_id,store_code,member_phone,advisor_code,purchased_at,sku,quantity,amount"
)


@dataclass
class Files:
    folder: Path
    rows: dict[str, int]
    # The floor's rows, computed with the files: what the import will have written.
    members: list[tuple]
    babies: list[tuple]
    purchases: list[tuple]
    lines: list[tuple]
    ledger: list[tuple]
    points: int


def generate(args: argparse.Namespace, folder: Path, today: date) -> Files:
    """The five files and the floor's rows, deterministically from ``--seed``."""
    rng = random.Random(args.seed)
    rows: dict[str, int] = {}
    shares = [share for _, share, _, _ in REGIONS]
    store_region = rng.choices(range(len(REGIONS)), weights=shares, k=args.stores)
    with open(folder / "stores.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "region", "timezone", "latitude", "longitude", "o2o"])
        for s in range(args.stores):
            region, _, lat, lon = REGIONS[store_region[s]]
            w.writerow(
                [
                    f"S{s:05d}",
                    f"{region}门店{s}",
                    region,
                    "Asia/Shanghai",
                    f"{lat + rng.uniform(-1, 1):.4f}",
                    f"{lon + rng.uniform(-1, 1):.4f}",
                    "true",
                ]
            )
    rows["stores"] = args.stores
    with open(folder / "advisors.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "phone", "store_code", "active"])
        for a in range(args.stores * 2):
            w.writerow([f"A{a:06d}", f"顾问{a}", f"135{a:08d}", f"S{a // 2:05d}", "true"])
    rows["advisors"] = args.stores * 2
    with open(folder / "products.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "name", "category", "stage", "days_of_supply", "points_eligible"])
        for sku, name, category, stage, days, eligible, _ in PRODUCTS:
            w.writerow([sku, name, category, stage or "", days or "", str(eligible).lower()])
    rows["products"] = len(PRODUCTS)

    members, babies = [], []
    joined_on: dict[int, date] = {}
    with open(folder / "members.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "phone",
                "name",
                "store_code",
                "advisor_code",
                "registered_at",
                "baby_birth_date",
                "baby_due_date",
            ]
        )
        for n in range(args.members):
            store = n % args.stores
            advisor = store * 2 + (n // args.stores) % 2
            joined = today - timedelta(days=1 + rng.randrange(365))
            at = datetime(joined.year, joined.month, joined.day, 10, rng.randrange(60), tzinfo=TZ)
            birth = joined - timedelta(days=rng.randrange(400))
            w.writerow(
                [
                    f"138{n:08d}",
                    f"会员{n}",
                    f"S{store:05d}",
                    f"A{advisor:06d}",
                    at.isoformat(),
                    birth.isoformat(),
                    "",
                ]
            )
            joined_on[n] = joined
            members.append(
                (
                    n + 1,
                    f"138{n:08d}",
                    f"会员{n}",
                    store + 1,
                    advisor + 1,
                    advisor + 1,
                    at,
                    joined,
                    False,
                    0,
                )
            )
            babies.append((n + 1, "", birth, None))
    rows["members"] = args.members

    purchases, lines, ledger = [], [], []
    per_member = args.purchases / args.members
    points_total = 0
    receipt_no = line_rows = 0
    with open(folder / "purchases.csv", "w", encoding="utf-8", newline="") as f:
        f.write(PURCHASE_COLUMNS + "\n")
        w = csv.writer(f)
        for store in range(args.stores):
            bought = []
            for n in range(store, args.members, args.stores):
                k = max(1, round(rng.gauss(per_member, 1)))
                span = max((today - joined_on[n]).days, 1)
                for _ in range(k):
                    day = joined_on[n] + timedelta(days=rng.randrange(span))
                    at = datetime(
                        day.year,
                        day.month,
                        day.day,
                        9 + rng.randrange(11),
                        rng.randrange(60),
                        rng.randrange(60),
                        tzinfo=TZ,
                    )
                    bought.append((at, n))
            bought.sort()
            for at, n in bought:
                if receipt_no >= args.purchases:
                    break
                receipt_no += 1
                advisor = store * 2 + rng.randrange(2)
                picks = [rng.randrange(4)] + ([4 + rng.randrange(3)] if rng.random() < 0.2 else [])
                eligible = total = 0
                for line_no, slot in enumerate(picks, start=1):
                    sku, _, _, _, _, is_eligible, price = PRODUCTS[slot]
                    qty = 1 + (rng.random() < 0.3)
                    w.writerow(
                        [
                            f"R{receipt_no:08d}",
                            f"S{store:05d}",
                            f"138{n:08d}",
                            f"A{advisor:06d}",
                            at.isoformat(),
                            sku,
                            qty,
                            f"{price * qty / 100:.2f}",
                        ]
                    )
                    lines.append((receipt_no, line_no, slot + 1, qty, price * qty))
                    total += price * qty
                    eligible += price * qty if is_eligible else 0
                    line_rows += 1
                points = eligible // 100
                points_total += points
                day = at.astimezone(TZ).date()
                purchases.append(
                    (
                        receipt_no,
                        store + 1,
                        f"R{receipt_no:08d}",
                        n + 1,
                        advisor + 1,
                        at,
                        day,
                        total,
                        eligible,
                        points,
                        0,
                        False,
                        0,
                        "x" * 64,
                    )
                )
                if points:
                    ledger.append(
                        (n + 1, store + 1, "earn", points, receipt_no, at, day, f"{day:%Y-%m}")
                    )
    rows["purchases"] = line_rows
    return Files(folder, rows, members, babies, purchases, lines, ledger, points_total)


def url_of(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def admin(admin_url: str, statement: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def tiantian(url: str, *args: str) -> tuple[float, str]:
    env = {**os.environ, "DATABASE_URL": url}
    started = time.perf_counter()
    done = subprocess.run([*TIANTIAN, *args], env=env, capture_output=True, text=True, cwd=REPO)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"tiantian {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return took, done.stdout.splitlines()[0] if done.stdout else ""


def lots_of(ledger: list[tuple]) -> list[tuple]:
    """The lots the import books (members.lots): a member's month of earnings, expiring
    at the end of the month the default policy's 24 months on. Worked out before the
    clock starts, as the floor's other rows are."""
    earned: dict[tuple[int, str], int] = defaultdict(int)
    for member, _, _, points, _, _, day, _ in ledger:
        earned[(member, f"{day:%Y-%m}")] += points
    lots = []
    for (member, month), points in sorted(earned.items()):
        year, number = int(month[:4]), int(month[5:7]) + 25
        first_after = date(year + (number - 1) // 12, (number - 1) % 12 + 1, 1)
        lots.append((member, month, first_after - timedelta(days=1), points, 0, 0))
    return lots


async def copy_floor(url: str, files: Files) -> dict[str, float]:
    """The same rows by COPY: the registry, then members with babies, then purchases
    with their lines, ledger rows and lots; seconds for each."""
    lots = lots_of(files.ledger)
    conn = await asyncpg.connect(url)
    took: dict[str, float] = {}
    try:
        started = time.perf_counter()
        await conn.execute(
            "INSERT INTO store (id, code, name, region, timezone, created_at, updated_at)"
            " SELECT s, 'S' || lpad((s - 1)::text, 5, '0'), 'x', 'x', 'Asia/Shanghai', now(), now()"
            f" FROM generate_series(1, {files.rows['stores']}) s;"
            "INSERT INTO advisor (id, code, store, name, phone, active, created_at, updated_at)"
            " SELECT a, 'A' || lpad((a - 1)::text, 6, '0'), (a + 1) / 2, 'x', '13500000000', true,"
            f" now(), now() FROM generate_series(1, {files.rows['advisors']}) a;"
            "INSERT INTO product (id, sku, name, category, stage, points_eligible, updated_at)"
            f" SELECT p, 'P' || p, 'x', 'formula', 1, true, now() FROM generate_series(1, 7) p"
        )
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "member",
                records=files.members,
                columns=[
                    "id",
                    "phone",
                    "name",
                    "home_store",
                    "owning_advisor",
                    "recruited_by",
                    "joined_at",
                    "joined_on",
                    "do_not_contact",
                    "points_balance",
                ],
            )
            await conn.copy_records_to_table(
                "baby", records=files.babies, columns=["member", "name", "birth_date", "due_date"]
            )
        took["members"] = time.perf_counter() - started
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "purchase",
                records=files.purchases,
                columns=[
                    "id",
                    "store",
                    "receipt_id",
                    "member",
                    "advisor",
                    "purchased_at",
                    "purchased_on",
                    "total_fen",
                    "eligible_fen",
                    "points_earned",
                    "bonus_points",
                    "repeat",
                    "points_balance_after",
                    "request_hash",
                ],
            )
            await conn.copy_records_to_table(
                "purchase_line",
                records=files.lines,
                columns=["purchase", "line_no", "product", "quantity", "amount_fen"],
            )
            await conn.copy_records_to_table(
                "points_ledger",
                records=files.ledger,
                columns=[
                    "member",
                    "store",
                    "kind",
                    "points",
                    "purchase",
                    "occurred_at",
                    "occurred_on",
                    "booked_month",
                ],
            )
            await conn.copy_records_to_table(
                "points_lot",
                records=lots,
                columns=["member", "month", "expires_on", "earned", "used", "expired"],
            )
        took["purchases"] = time.perf_counter() - started
    finally:
        await conn.close()
    return took


async def imported_points(url: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT COALESCE(SUM(points_balance), 0) FROM member) AS balances,"
            " (SELECT COALESCE(SUM(points), 0) FROM points_ledger) AS ledger,"
            " (SELECT COUNT(*) FROM purchase) AS receipts"
        )
        return int(row["balances"]), int(row["ledger"]), int(row["receipts"])
    finally:
        await conn.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--stores", type=int, default=25_000)
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument("--purchases", type=int, default=3_000_000, help="receipts")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--keep", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    suffix = uuid.uuid4().hex[:10]
    names = {"import": f"tiantian_importbench_{suffix}", "copy": f"tiantian_copybench_{suffix}"}
    folder = Path(tempfile.mkdtemp(prefix="tiantian-import-bench-"))
    # The domain's today (TIANTIAN_NOW when the clock is frozen, as in the smoke test):
    # nothing generated may lie in the importer's future.
    frozen = os.environ.get("TIANTIAN_NOW")
    now = datetime.fromisoformat(frozen) if frozen else datetime.now(UTC)
    today = now.astimezone(TZ).date()
    started = time.perf_counter()
    files = generate(args, folder, today)
    print(
        f"files: {', '.join(f'{k} {v:,}' for k, v in files.rows.items())} CSV rows"
        f" in {folder} ({time.perf_counter() - started:.1f}s)"
    )
    for name in names.values():
        asyncio.run(admin(args.admin_url, f'CREATE DATABASE "{name}"'))
    try:
        urls = {k: url_of(args.admin_url, n) for k, n in names.items()}
        for url in urls.values():
            tiantian(url, "migrate")
        took: dict[str, float] = {}
        for kind in ("stores", "advisors", "products", "members", "purchases"):
            took[kind], summary = tiantian(
                urls["import"], "import", kind, str(folder / f"{kind}.csv")
            )
            print(f"import {kind:9s} {took[kind]:8.1f}s  {summary}")
            if not summary.endswith("rejected 0") or summary.startswith("created 0"):
                raise SystemExit(f"the {kind} import did not create every line: {summary}")
        floor = asyncio.run(copy_floor(urls["copy"], files))
        balances, ledger, receipts = asyncio.run(imported_points(urls["import"]))
        print(
            f"check: {receipts:,} receipts; balances {balances:,} = ledger {ledger:,}"
            f" = points computed {files.points:,}: {balances == ledger == files.points}"
        )
        print()
        print(
            f"{'rows':>10s} {'kind':9s} {'import rows/s':>14s} {'COPY rows/s':>12s} {'ratio':>7s}"
        )
        met = True
        for kind in ("members", "purchases"):
            n = files.rows[kind]
            mine, theirs = n / took[kind], n / floor[kind]
            met &= mine / theirs >= TARGET
            print(f"{n:10,d} {kind:9s} {mine:14,.0f} {theirs:12,.0f} {mine / theirs:7.1%}")
        both = files.rows["members"] + files.rows["purchases"]
        mine = both / (took["members"] + took["purchases"])
        theirs = both / (floor["members"] + floor["purchases"])
        met &= mine / theirs >= TARGET
        print(f"{both:10,d} {'together':9s} {mine:14,.0f} {theirs:12,.0f} {mine / theirs:7.1%}")
        print(f"target: the import at least {TARGET:.0%} of COPY: {'met' if met else 'NOT met'}")
        if balances != ledger or balances != files.points:
            raise SystemExit("the imported points do not add up")
        if not met:
            raise SystemExit(1)
    finally:
        if not args.keep:
            for name in names.values():
                asyncio.run(admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()


if __name__ == "__main__":
    main()
