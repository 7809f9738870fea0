"""Build a national-scale synthetic dataset in PostgreSQL for the benchmarks.

What it builds (defaults): 25,000 stores over seven regions, 50,000 advisors (two a
store), a seven-product catalogue, 1,000,000 members with their babies, about three
purchases a member over the last six months with their lines, one ``earn`` row of
the points ledger per purchase, and member balances and latest-purchase columns
that agree with the ledger and the purchases.

Every table is filled by set-based SQL (``INSERT … SELECT … FROM generate_series``)
on one asyncpg connection, never by a Python loop over rows. The data are
deterministic: "random" choices are hashes of a row number and a salt, so the same
arguments (and the same domain date, see ``TIANTIAN_NOW``) give the same dataset.

Run it against a PostgreSQL database; it applies the migrations first::

    .venv/bin/python bench/make_dataset.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/tiantian_bench [--reset]

Without ``--reset`` it refuses a database that already has stores; with it, every
table of the members app is emptied first (logins and POS keys included), and by
CASCADE every table that refers to them, such as the tasks.

Deliberate simplifications of the synthetic set:

* ``purchase.points_balance_after`` is the member's running sum of earned points
  (there are no redemptions), so it is exact for this data set but would not survive
  later redemptions being added around it.
* Stores differ in size (a skewed draw), advisors are spread evenly, and every store
  uses Asia/Shanghai.
* Purchases run from the member's joining day to yesterday; about 15% of members go
  quiet 46-80 days before today, as in the demo chain.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Awaitable
from datetime import date, timedelta
from pathlib import Path

import asyncpg

TZ = "Asia/Shanghai"
MAX_PHONE_SERIAL = 99_999_999  # eight digits after the three-digit mobile prefix

# (region, share of stores in %, latitude, longitude of its centre)
REGIONS = [
    ("华东", 24, 31.2, 120.5),
    ("华南", 20, 23.1, 113.3),
    ("华北", 16, 39.9, 116.4),
    ("华中", 14, 30.6, 114.3),
    ("西南", 12, 30.6, 104.1),
    ("东北", 7, 41.8, 123.4),
    ("西北", 7, 34.3, 108.9),
]
# (sku, name, category, stage, days of supply, points eligible, price in fen).
# Slots 1-4 are formula stages 1-4; 5-7 are the add-ons a receipt may carry.
PRODUCTS = [
    ("F1-800", "贝塔星 1段 婴儿配方奶粉 800g", "formula", 1, 12, True, 35800),
    ("F2-800", "贝塔星 2段 较大婴儿配方奶粉 800g", "formula", 2, 14, True, 33800),
    ("F3-800", "贝塔星 3段 幼儿配方奶粉 800g", "formula", 3, 16, True, 31800),
    ("F4-800", "贝塔星 4段 儿童成长奶粉 800g", "formula", 4, 18, True, 28800),
    ("PB-30", "益生菌冲剂 30袋", "probiotic", None, 30, True, 19800),
    ("CE-250", "高铁米粉 250g", "cereal", None, 20, True, 6800),
    ("CA-WIPE", "婴儿湿巾 80抽×6包", "care", None, None, False, 5990),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN_NAMES = ["晓燕", "佳", "丽娟", "敏", "婷", "琳", "芳", "娜", "静", "洋", "雪", "颖"]
BABY_NAMES = ["小宝", "乐乐", "豆豆", "果果", "朵朵", "糖糖", "安安", "多多", "米米", "可可"]
MEMBER_TABLES = [
    "store",
    "advisor",
    "product",
    "member",
    "baby",
    "purchase",
    "purchase_line",
    "redemption",
    "points_ledger",
    "user_account",
    "user_store",
    "pos_key",
    # The incentives' tables, emptied and vacuumed with the rest.
    "score_fact",
    "advisor_score",
    "store_score",
    "closed_month",
    "statement_line",
    "contest",
    "contest_pair",
]
# Tables given explicit ids here (so that rows can point at each other by arithmetic
# instead of joins); their sequences are moved past the ids afterwards.
EXPLICIT_ID_TABLES = ["store", "advisor", "member", "purchase"]
# Purchase k of the member drawn as n is keyed n * PURCHASE_KEY_STRIDE + k.
PURCHASE_KEY_STRIDE = 4096
MAX_PURCHASES_PER_MEMBER_AVG = 1000  # keeps k (at most 3x the average) below the stride


def sql_text_array(values: list[str]) -> str:
    """A constant text[] literal for the few fixed name lists inlined into the SQL."""
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


SURNAME_ARRAY = sql_text_array(list(SURNAMES))
GIVEN_ARRAY = sql_text_array(GIVEN_NAMES)
BABY_ARRAY = sql_text_array(BABY_NAMES)

# The choices are hashes, not random(): the same arguments give the same dataset,
# and the planner inlines these one-line SQL functions into each statement.
HASH_FUNCTIONS = """
CREATE FUNCTION pg_temp.rnd(n bigint, salt bigint, m bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT abs(hashint8extended(n, salt + {seed}) % m) $$;
CREATE FUNCTION pg_temp.unit(n bigint, salt bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(n, salt + {seed}) & 9007199254740991)::double precision
                 / 9007199254740992 $$;
"""

UPSERT_PRODUCTS = """
INSERT INTO product (sku, name, category, stage, days_of_supply, points_eligible)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::int4[], $6::bool[])
ON CONFLICT (sku) DO UPDATE SET
    name = EXCLUDED.name, category = EXCLUDED.category, stage = EXCLUDED.stage,
    days_of_supply = EXCLUDED.days_of_supply, points_eligible = EXCLUDED.points_eligible,
    updated_at = now()
"""

CATALOGUE = """
CREATE TEMP TABLE catalogue ON COMMIT DROP AS
SELECT c.slot, p.id AS product, c.price_fen, p.points_eligible AS eligible
FROM unnest($1::text[], $2::int4[], $3::int8[]) AS c (sku, slot, price_fen)
JOIN product p USING (sku)
"""

INSERT_STORES = """
INSERT INTO store (id, code, name, region, timezone, latitude, longitude)
SELECT s, 'S' || lpad(s::text, $2, '0'), '门店' || lpad(s::text, $2, '0'), r.region, $3,
       round((r.lat + (pg_temp.unit(s, 11) - 0.5) * 4)::numeric, 4)::float8,
       round((r.lng + (pg_temp.unit(s, 12) - 0.5) * 6)::numeric, 4)::float8
FROM generate_series(1, $1::int4) AS s
JOIN unnest($4::text[], $5::int4[], $6::int4[], $7::float8[], $8::float8[])
    AS r (region, lo, hi, lat, lng)
  ON pg_temp.rnd(s, 10, 100) >= r.lo AND pg_temp.rnd(s, 10, 100) < r.hi
"""

# Advisor a works at store (a - 1) * S / A + 1: contiguous codes per store.
INSERT_ADVISORS = f"""
INSERT INTO advisor (id, code, store, name, phone, active)
SELECT a, 'A' || lpad(a::text, $3, '0'), ((a - 1) * $2::int8 / $1::int8 + 1)::int4,
       ({SURNAME_ARRAY})[1 + pg_temp.rnd(a, 20, {len(SURNAMES)})]
           || ({GIVEN_ARRAY})[1 + pg_temp.rnd(a, 21, {len(GIVEN_NAMES)})],
       '138' || lpad(a::text, 8, '0'), true
FROM generate_series(1, $1::int4) AS a
"""

# One row per member, numbered by joining time so that member ids grow with time as
# they do in production. Parameters: $1 members, $2 stores, $3 advisors, $4 today,
# $5 first day of the window, $6 average purchases, $7 a multiplier coprime to the
# number of stores (it scatters the big stores over the codes).
MEMBER_PLAN = f"""
CREATE TEMP TABLE mplan ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY joined_at, n) AS id, *
FROM (
    SELECT n, store,
           first_adv + pg_temp.rnd(n, 33, n_adv) AS recruited_by,
           -- a tenth have been handed to another advisor of the store since
           CASE WHEN pg_temp.rnd(n, 34, 10) = 0 THEN first_adv + pg_temp.rnd(n, 35, n_adv)
                ELSE first_adv + pg_temp.rnd(n, 33, n_adv) END AS owning_advisor,
           joined_on,
           (joined_on + time '10:00' + pg_temp.rnd(n, 32, 32400) * interval '1 second')
               AT TIME ZONE '{TZ}' AS joined_at,
           pg_temp.rnd(n, 36, 100) < 2 AS do_not_contact,
           ({SURNAME_ARRAY})[1 + pg_temp.rnd(n, 37, {len(SURNAMES)})] || '女士' AS name,
           CASE WHEN pg_temp.rnd(n, 38, 100) >= 8
                THEN $4::date - pg_temp.rnd(n, 39, 1461)::int4 END AS birth_date,
           CASE WHEN pg_temp.rnd(n, 38, 100) < 8
                THEN $4::date + 1 + pg_temp.rnd(n, 40, 270)::int4 END AS due_date,
           CASE WHEN pg_temp.rnd(n, 38, 100) >= 8
                THEN ({BABY_ARRAY})[1 + pg_temp.rnd(n, 41, {len(BABY_NAMES)})]
                ELSE '' END AS baby_name,
           pg_temp.rnd(n, 42, 10) = 0 AS has_second,
           $4::date - pg_temp.rnd(n, 43, 1461)::int4 AS second_birth_date,
           ({BABY_ARRAY})[1 + pg_temp.rnd(n, 44, {len(BABY_NAMES)})] AS second_name,
           -- proportional to tenure, so that the average over members is $6
           floor($6::float8 * 2 * ($4::date - joined_on) / ($4::date - $5::date)
                 * (0.5 + pg_temp.unit(n, 45)) + 0.5)::int4 AS n_purchases,
           CASE WHEN pg_temp.rnd(n, 46, 100) < 15
                THEN greatest(joined_on, $4::date - 46 - pg_temp.rnd(n, 47, 35)::int4)
                ELSE $4::date - 1 END AS last_day
    FROM (
        SELECT n, store,
               ((store - 1) * $3::int8 + $2::int8 - 1) / $2::int8 + 1 AS first_adv,
               (store * $3::int8 + $2::int8 - 1) / $2::int8
                   - ((store - 1) * $3::int8 + $2::int8 - 1) / $2::int8 AS n_adv,
               $5::date + pg_temp.rnd(n, 31, $4::date - $5::date)::int4 AS joined_on
        FROM (
            SELECT n,
                   1 + (floor($2::int8 * power(pg_temp.unit(n, 30), 1.3))::int8 * $7::int8)
                       % $2::int8 AS store
            FROM generate_series(1, $1::int8) AS n
        ) drawn
    ) placed
) planned
ORDER BY id
"""

INSERT_MEMBERS = """
INSERT INTO member (id, phone, name, home_store, owning_advisor, recruited_by, joined_at,
                    joined_on, do_not_contact, points_balance, created_at)
SELECT id, '137' || lpad(id::text, 8, '0'), name, store, owning_advisor, recruited_by,
       joined_at, joined_on, do_not_contact, 0, joined_at
FROM mplan
"""

INSERT_BABIES = """
INSERT INTO baby (member, name, birth_date, due_date, created_at)
SELECT m.id, b.name, b.birth_date, b.due_date, m.joined_at
FROM mplan m
CROSS JOIN LATERAL (VALUES (1, m.baby_name, m.birth_date, m.due_date),
                           (2, m.second_name, m.second_birth_date, NULL::date))
    AS b (k, name, birth_date, due_date)
WHERE b.k = 1 OR m.has_second
"""

# One row per purchase with its lines folded in, numbered by time like production ids.
# Purchase k of n falls in the k-th n-th of the member's days (joining day to
# last_day); on the joining day it comes minutes after joining, otherwise 09:00-21:00.
# The formula stage follows the first baby's age (unborn: stage 1).
PURCHASE_PLAN = f"""
CREATE TEMP TABLE pplan ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY purchased_at, member, k) AS id, *,
       sum(points) OVER (PARTITION BY member ORDER BY purchased_at, k) AS balance_after
FROM (
    SELECT member, store, advisor, k, purchased_at,
           (purchased_at AT TIME ZONE '{TZ}')::date AS purchased_on,
           c1.product AS product1, q1, c1.price_fen * q1 AS amount1,
           c2.product AS product2, c2.price_fen AS amount2,
           c1.price_fen * q1 + coalesce(c2.price_fen, 0) AS total_fen,
           CASE WHEN c1.eligible THEN c1.price_fen * q1 ELSE 0 END
               + CASE WHEN c2.eligible THEN c2.price_fen ELSE 0 END AS eligible_fen,
           (CASE WHEN c1.eligible THEN c1.price_fen * q1 ELSE 0 END
               + CASE WHEN c2.eligible THEN c2.price_fen ELSE 0 END) / 100 AS points
    FROM (
        SELECT member, store, advisor, k, key,
               CASE WHEN day = joined_on
                    THEN joined_at + (120 + pg_temp.rnd(key, 51, 2400)) * interval '1 second'
                    ELSE (day + time '09:00' + pg_temp.rnd(key, 52, 43200) * interval '1 second')
                         AT TIME ZONE '{TZ}' END AS purchased_at,
               CASE WHEN birth_date IS NULL OR day - birth_date < 183 THEN 1
                    WHEN day - birth_date < 365 THEN 2
                    WHEN day - birth_date < 1096 THEN 3
                    ELSE 4 END AS stage,
               CASE WHEN pg_temp.rnd(key, 53, 3) = 2 THEN 2 ELSE 1 END AS q1,
               CASE WHEN pg_temp.rnd(key, 54, 10) < 3 THEN 5 + pg_temp.rnd(key, 55, 3) END
                   AS extra
        FROM (
            SELECT m.id AS member, m.store, m.owning_advisor AS advisor, k, key,
                   m.joined_on, m.joined_at, m.birth_date,
                   m.joined_on + floor((m.last_day - m.joined_on + 1)
                                       * (k - 1 + pg_temp.unit(key, 50)) / m.n_purchases)::int4
                       AS day
            FROM mplan m
            CROSS JOIN LATERAL generate_series(1, m.n_purchases) AS k
            CROSS JOIN LATERAL (SELECT m.n * {PURCHASE_KEY_STRIDE} + k AS key) AS keyed
        ) dated
    ) shaped
    JOIN catalogue c1 ON c1.slot = shaped.stage
    LEFT JOIN catalogue c2 ON c2.slot = shaped.extra
) priced
ORDER BY id
"""

INSERT_PURCHASES = """
INSERT INTO purchase (id, store, receipt_id, member, advisor, purchased_at, purchased_on,
                      total_fen, eligible_fen, points_earned, points_balance_after,
                      request_hash, created_at)
SELECT id, store, 'R' || id, member, advisor, purchased_at, purchased_on, total_fen,
       eligible_fen, points, balance_after, md5('R' || id), purchased_at
FROM pplan
"""

INSERT_LINES = """
INSERT INTO purchase_line (purchase, line_no, product, quantity, amount_fen)
SELECT p.id, l.line_no, l.product, l.quantity, l.amount_fen
FROM pplan p
CROSS JOIN LATERAL (VALUES (1, p.product1, p.q1, p.amount1),
                           (2, p.product2, 1, p.amount2))
    AS l (line_no, product, quantity, amount_fen)
WHERE l.product IS NOT NULL
"""

INSERT_LEDGER = """
INSERT INTO points_ledger (member, store, kind, points, purchase, occurred_at, occurred_on,
                           created_at)
SELECT member, store, 'earn', points, id, purchased_at, purchased_on, purchased_at
FROM pplan
WHERE points > 0
"""

# The caches the service keeps on member, in one pass over its rows: the balance
# from the ledger, the latest purchase the daily run finds quiet members by, and the
# latest formula stage it finds babies due to move stage by.
# Every member with ledger rows has purchases, so the purchases side drives the join;
# all stores share one time zone, so the latest day is the latest purchase's day.
# The score ledger the service would have written: a new_member fact per recruited
# member and a points fact per purchase that earned points (no month is closed yet).
INSERT_SCORE_FACTS = """
INSERT INTO score_fact (advisor, store, kind, amount, counts_on, counts_week, counts_month,
                        booked_month, source_key, member, purchase, task, recorded_at)
SELECT recruited_by, store, 'new_member', 1, joined_on, to_char(joined_on, 'IYYY-"W"IW'),
       to_char(joined_on, 'YYYY-MM'), to_char(joined_on, 'YYYY-MM'), 'new_member:' || id,
       id, NULL::bigint, NULL::bigint, joined_at
FROM mplan WHERE recruited_by IS NOT NULL
UNION ALL
SELECT advisor, store, 'points', points, purchased_on, to_char(purchased_on, 'IYYY-"W"IW'),
       to_char(purchased_on, 'YYYY-MM'), to_char(purchased_on, 'YYYY-MM'), 'points:' || id,
       member, id, NULL::bigint, purchased_at
FROM pplan WHERE points > 0 AND advisor IS NOT NULL
"""

UPDATE_MEMBER_CACHES = """
UPDATE member m
SET points_balance = coalesce(l.total, 0),
    last_purchased_at = p.last_at,
    last_purchase_on = p.last_on,
    last_formula_at = f.formula_at,
    last_formula_stage = f.formula_stage
FROM (SELECT member, max(purchased_at) AS last_at, max(purchased_on) AS last_on
      FROM purchase GROUP BY member) p
LEFT JOIN (SELECT member, sum(points)::int4 AS total FROM points_ledger GROUP BY member) l
    USING (member)
LEFT JOIN (SELECT DISTINCT ON (pu.member) pu.member, pu.purchased_at AS formula_at,
                  pr.stage AS formula_stage
           FROM purchase pu JOIN purchase_line li ON li.purchase = pu.id
           JOIN product pr ON pr.id = li.product
           WHERE pr.category = 'formula'
           ORDER BY pu.member, pu.purchased_at DESC, pr.stage DESC) f
    USING (member)
WHERE m.id = p.member
"""


def months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for clamp in (31, 30, 29, 28):  # the 31st of a shorter month becomes its last day
        try:
            return date(year, month, min(day.day, clamp))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def coprime_multiplier(stores: int) -> int:
    multiplier = 1_000_003
    while math.gcd(multiplier, stores) != 1:
        multiplier += 2
    return multiplier


def rows_of(status: str) -> int:
    """The row count at the end of a command tag such as ``INSERT 0 25000``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class Steps:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    async def run(
        self, label: str, work: Awaitable[str], unit: str = "rows", count: int | None = None
    ) -> None:
        t0 = time.perf_counter()
        status = await work
        seconds = time.perf_counter() - t0
        count = rows_of(status) if count is None else count
        print(f"{label}: {count:,} {unit} in {seconds:.1f} s", flush=True)

    def total(self) -> None:
        print(f"total: {time.perf_counter() - self.started:.1f} s", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--stores", type=int, default=25_000)
    p.add_argument("--advisors", type=int, default=50_000)
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument(
        "--purchases-per-member", type=float, default=3.0, help="the average over members"
    )
    p.add_argument("--months", type=int, default=6, help="months of history ending today")
    p.add_argument("--seed", type=int, default=0, help="another seed gives another dataset")
    p.add_argument(
        "--reset",
        action="store_true",
        help="empty the members app's tables first (logins, POS keys and, by CASCADE, tasks too)",
    )
    args = p.parse_args(argv)
    url = args.database_url or ""
    if not url.startswith(("postgresql://", "postgres://")):
        p.error("--database-url (or DATABASE_URL) must be a postgresql:// URL")
    if args.stores < 1:
        p.error("--stores must be at least 1")
    if not args.stores <= args.advisors <= MAX_PHONE_SERIAL:
        p.error(f"--advisors must be between --stores and {MAX_PHONE_SERIAL:,}")
    if not 0 <= args.members <= MAX_PHONE_SERIAL:
        p.error(f"--members must be between 0 and {MAX_PHONE_SERIAL:,}")
    if not 0 <= args.purchases_per_member <= MAX_PURCHASES_PER_MEMBER_AVG:
        p.error(f"--purchases-per-member must be between 0 and {MAX_PURCHASES_PER_MEMBER_AVG}")
    if args.months < 1:
        p.error("--months must be at least 1")
    return args


async def build(args: argparse.Namespace, today: date, steps: Steps) -> None:
    start = months_before(today, args.months)
    conn = await asyncpg.connect(args.database_url)
    try:
        # Session settings only, so the server's configuration does not matter: losing
        # the last commits in a crash costs nothing here, and sorts of a few million
        # rows and the temporary tables stay in memory.
        await conn.execute(
            "SET synchronous_commit = off; SET work_mem = '256MB'; "
            "SET temp_buffers = '512MB'; SET maintenance_work_mem = '512MB'"
        )
        await conn.execute(HASH_FUNCTIONS.format(seed=args.seed * 1000))
        # One transaction: a failure leaves the database as it was, not half built.
        async with conn.transaction():
            if args.reset:
                await steps.run(
                    "reset",
                    conn.execute(f"TRUNCATE {', '.join(MEMBER_TABLES)} RESTART IDENTITY CASCADE"),
                    unit="tables",
                    count=len(MEMBER_TABLES),
                )
            elif await conn.fetchval("SELECT EXISTS (SELECT 1 FROM store)"):
                raise SystemExit(
                    "error: the database already has stores; use --reset to replace them"
                )
            print(
                f"building {args.stores:,} stores, {args.advisors:,} advisors, "
                f"{args.members:,} members, ~{args.purchases_per_member:g} purchases each, "
                f"from {start} to {today - timedelta(days=1)}",
                flush=True,
            )
            await build_rows(conn, steps, args, today, start)
        # VACUUM as well as ANALYZE: it sets hint bits and the visibility map now, and
        # clears the dead rows the balance update left, rather than autovacuum doing so
        # in the middle of the first benchmark.
        await steps.run(
            "vacuum analyze",
            conn.execute(f"VACUUM (ANALYZE) {', '.join(MEMBER_TABLES)}"),
            unit="tables",
            count=len(MEMBER_TABLES),
        )
    finally:
        await conn.close()


async def build_rows(
    conn: asyncpg.Connection, steps: Steps, args: argparse.Namespace, today: date, start: date
) -> None:
    skus, names, categories, stages, days, eligible, prices = map(list, zip(*PRODUCTS, strict=True))
    await steps.run(
        "products", conn.execute(UPSERT_PRODUCTS, skus, names, categories, stages, days, eligible)
    )
    await conn.execute(CATALOGUE, skus, list(range(1, len(skus) + 1)), prices)

    lo = [sum(r[1] for r in REGIONS[:i]) for i in range(len(REGIONS))]
    await steps.run(
        "stores",
        conn.execute(
            INSERT_STORES,
            args.stores,
            max(5, len(str(args.stores))),
            TZ,
            [r[0] for r in REGIONS],
            lo,
            [x + r[1] for x, r in zip(lo, REGIONS, strict=True)],
            [r[2] for r in REGIONS],
            [r[3] for r in REGIONS],
        ),
    )
    await steps.run(
        "advisors",
        conn.execute(INSERT_ADVISORS, args.advisors, args.stores, max(7, len(str(args.advisors)))),
    )
    await steps.run(
        "member plan (temporary)",
        conn.execute(
            MEMBER_PLAN,
            args.members,
            args.stores,
            args.advisors,
            today,
            start,
            args.purchases_per_member,
            coprime_multiplier(args.stores),
        ),
    )
    await steps.run("members", conn.execute(INSERT_MEMBERS))
    await steps.run("babies", conn.execute(INSERT_BABIES))
    await steps.run("purchase plan (temporary)", conn.execute(PURCHASE_PLAN))
    await steps.run("purchases", conn.execute(INSERT_PURCHASES))
    await steps.run("purchase lines", conn.execute(INSERT_LINES))
    await steps.run("points ledger", conn.execute(INSERT_LEDGER))
    await steps.run(
        "member balances and last purchases (updated)", conn.execute(UPDATE_MEMBER_CACHES)
    )
    await steps.run("score ledger", conn.execute(INSERT_SCORE_FACTS))
    for table in EXPLICIT_ID_TABLES:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"coalesce(max(id), 0) + 1, false) FROM {table}"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # piccolo_conf picks its engine from DATABASE_URL when first imported.
    os.environ["DATABASE_URL"] = args.database_url
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from zoneinfo import ZoneInfo

    from advisor_api import cli
    from core import clock

    steps = Steps()
    asyncio.run(cli.migrate())
    print(f"migrations: applied in {time.perf_counter() - steps.started:.1f} s", flush=True)
    asyncio.run(build(args, clock.today(ZoneInfo(TZ)), steps))
    asyncio.run(build_totals(steps))
    steps.total()


async def build_totals(steps: Steps) -> None:
    """The league-table totals, by the service's own rebuild, a month at a time."""
    from core.db import connection_pool, fetch
    from incentives.rebuild import open_months, rebuild

    async with connection_pool():
        for month in await open_months():
            report = await rebuild(month)
            print(
                f"league totals {month}: {report.advisor_rows:,} advisor and"
                f" {report.store_rows:,} store rows in {report.seconds:.1f} s",
                flush=True,
            )
        await fetch("VACUUM (ANALYZE) advisor_score, store_score")


if __name__ == "__main__":
    main()
