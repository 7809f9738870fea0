"""Build a national-scale synthetic dataset in PostgreSQL for the benchmarks.

What it builds (defaults): 25,000 stores over seven regions, 50,000 advisors (two a
store), a seven-product catalogue, 1,000,000 members with their babies, about three
purchases a member over the last six months with their lines, one ``earn`` row of
the points ledger per purchase, and member balances and latest-purchase columns
that agree with the ledger and the purchases; RN3's repeat flag on each purchase;
the playbook's history over the same months (about eight tasks a member: every kind,
three campaigns, with calls, reaches, conversions and kept stage-ups, and their
task_done and task_converted facts in the score ledger); the store_day and
task_summary rows the insights read, the activity snapshots the daily job takes
(yesterday's and the past twelve month ends) and the league totals.

Every table is filled by set-based SQL (``INSERT … SELECT … FROM generate_series``)
on one asyncpg connection, never by a Python loop over rows. The data are
deterministic: "random" choices are hashes of a row number and a salt, so the same
arguments (and the same domain date, see ``TIANTIAN_NOW``) give the same dataset.
As a superuser it loads with triggers off (no foreign-key checks: the rows are made
by arithmetic) and sums store_day and task_summary once at the end, as the
migrations backfill them; otherwise the triggers keep them statement by statement.
Either way it ends by checking every summary row against the raw rows it sums.

Run it against a PostgreSQL database; it applies the migrations first::

    .venv/bin/python bench/make_dataset.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/tiantian_bench [--reset]

Without ``--reset`` it refuses a database that already has stores; with it, every
table of the members app is emptied first (logins and POS keys included), the
summaries, the campaigns and the tasks, and by CASCADE every table that refers to
them.

Deliberate simplifications of the synthetic set:

* ``purchase.points_balance_after`` is the member's running sum of earned points
  (there are no redemptions), so it is exact for this data set but would not survive
  later redemptions being added around it.
* Stores differ in size (a skewed draw), advisors are spread evenly, and every store
  uses Asia/Shanghai.
* Purchases run from the member's joining day to yesterday; about 15% of members go
  quiet 46-80 days before today, as in the demo chain.
* Tasks carry their outcome (status, result, when first contacted, reached) but the
  outcome rows and the status history behind them are not written; replenish is of
  formula only, by the label's days of supply; a campaign reaches the members of its
  segment who had joined by its start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
    "points_lot",
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
    # The members' summaries and the playbook's tables (their rows refer to stores and
    # members; campaigns to nothing, so they are named).
    "store_day",
    "store_activity",
    "campaign",
    "task",
    "task_event",
    "outcome",
    "task_summary",
]
# Tables given explicit ids here (so that rows can point at each other by arithmetic
# instead of joins); their sequences are moved past the ids afterwards.
EXPLICIT_ID_TABLES = ["store", "advisor", "member", "purchase", "task"]
# Purchase k of the member drawn as n is keyed n * PURCHASE_KEY_STRIDE + k.
PURCHASE_KEY_STRIDE = 4096
MAX_PURCHASES_PER_MEMBER_AVG = 1000  # keeps k (at most 3x the average) below the stride
REPEAT_WINDOW_DAYS = 90  # members.purchases: RN3 counts a purchase within 90 days of the last


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
       sum(points) OVER (PARTITION BY member ORDER BY purchased_at, k) AS balance_after,
       -- RN3's flag, as members.purchases.mark_repeats sets it: within 90 days of the
       -- member's previous purchase (ids follow purchased_at, then k, within a member)
       coalesce(purchased_on - lag(purchased_on) OVER (PARTITION BY member
                                                       ORDER BY purchased_at, k)
                <= {REPEAT_WINDOW_DAYS}, false) AS repeat
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
                      request_hash, created_at, repeat)
SELECT id, store, 'R' || id, member, advisor, purchased_at, purchased_on, total_fen,
       eligible_fen, points, balance_after, md5('R' || id), purchased_at, repeat
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
                           booked_month, created_at)
SELECT member, store, 'earn', points, id, purchased_at, purchased_on,
       to_char(purchased_on, 'YYYY-MM'), purchased_at
FROM pplan
WHERE points > 0
"""

# The lots the earnings make (members.lots): a member's month of earnings, expiring
# together at the end of the month the default policy's 24 months on; nothing spent.
INSERT_LOTS = """
INSERT INTO points_lot (member, month, expires_on, earned, used, expired)
SELECT member, month,
       (to_date(month || '-01', 'YYYY-MM-DD') + interval '25 months' - interval '1 day')::date,
       earned, 0, 0
FROM (SELECT member, to_char(purchased_on, 'YYYY-MM') AS month, sum(points)::int4 AS earned
      FROM pplan WHERE points > 0 GROUP BY 1, 2) e
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


# --- the playbook's history: campaigns and tasks with their outcomes ------------------
#
# Every kind the service makes, over the same months as the purchases, as its own
# code would have made them: welcome per new member, followup_3d per purchase day,
# replenish per formula purchase (superseded by the next one), reactivate after 45
# quiet days (cancelled by a purchase), stage_up and milestone at babies' ages, the
# campaigns' tasks over their segments, and the callbacks and deliveries calls asked
# for. Offsets, priorities and scripts come from the playbook_rule rows. Whether and
# when a task was called, and what came of it, are hashes of its dedupe key; a done
# task with a reached-type result converts the member's next purchase within 7 days
# (tasks.conversion), and a stage_up is kept by the next stage bought within 30 days
# of the boundary (tasks.generation).

# (name, months before today's month, first day's offset in it, days, segment, script)
CAMPAIGNS: list[tuple[str, int, int, int, dict[str, Any], str]] = [
    ("会员日回馈", 2, 0, 7, {"region": "华南"}, "会员日积分加倍,欢迎带宝宝来店里领取小礼品。"),
    (
        "转段关爱季",
        1,
        9,
        12,
        {"baby_age_months": [5, 12]},
        "宝宝到了转段的月龄,店里有转段试用装和一对一指导,欢迎预约。",
    ),
    ("冬季囤货节", 0, 0, 11, {"region": "华东"}, "冬季囤货节:奶粉整箱购买享会员专属价。"),
]
# Per mille of tasks whose advisor calls within the window, by kind.
CALL_RATES = {
    "welcome": 800,
    "followup_3d": 650,
    "replenish": 600,
    "stage_up": 700,
    "reactivate": 400,
    "milestone": 550,
    "campaign": 450,
    "callback": 750,
    "delivery": 900,
}
REACHED_RESULTS = ("reached", "will_buy", "purchased", "delivery_requested")
CONVERSION_DAYS = 7  # tasks.conversion.Conversion.window
KEEP_DAYS = 30  # tasks.generation.KEEP_DAYS
STAGE_BOUNDARIES = ((6, 2), (12, 3), (36, 4))  # months, the stage it moves to

TASK_SEED = """
CREATE TEMP TABLE tseed (
    kind text, member int8, store int4, assignee int4, topic text, reason text, script text,
    anchor_on date, due_on date, expires_on date, priority int2, cause text, dedupe_key text,
    created_at timestamptz, ends_at timestamptz, end_reason text
) ON COMMIT DROP
"""

# Each kind's source gives the columns of tseed; NULL offsets take the rule's window,
# a NULL creation time is 01:00 on the due day (the daily run). Only tasks made
# before ``$1`` (today's midnight) are kept. ``ends_at``: what would cancel the task
# while open (``end_reason``): the next purchase for a replenish or a reactivate.
SEED = f"""
INSERT INTO tseed
SELECT x.kind, x.member, x.store, x.assignee, x.topic, x.reason, coalesce(x.script, r.script),
       x.anchor_on, w.due_on, w.expires_on, r.priority, x.cause, x.dedupe_key,
       coalesce(x.created_at, (w.due_on + time '01:00') AT TIME ZONE '{TZ}'), x.ends_at,
       x.end_reason
FROM ({{source}}) AS x (kind, member, store, assignee, topic, reason, script, anchor_on, due_on,
                       expires_on, cause, dedupe_key, created_at, ends_at, end_reason)
JOIN playbook_rule r ON r.kind = x.kind
CROSS JOIN LATERAL (SELECT coalesce(x.due_on, x.anchor_on + r.due_offset_days) AS due_on,
                           coalesce(x.expires_on, x.anchor_on + r.expire_offset_days)
                               AS expires_on) w
WHERE coalesce(x.created_at, (w.due_on + time '01:00') AT TIME ZONE '{TZ}') < $1
"""

SEED_WELCOME = """
SELECT 'welcome', m.id, m.store, m.owning_advisor, '', '新会员欢迎', NULL, m.joined_on,
       NULL::date, NULL::date, 'member:' || m.id, 'welcome:' || m.id, m.joined_at,
       NULL::timestamptz, NULL
FROM mplan m WHERE NOT m.do_not_contact
"""

# Every purchase day, from its first receipt.
SEED_FOLLOWUP = """
SELECT DISTINCT ON (p.member, p.purchased_on) 'followup_3d', p.member, p.store, p.advisor, '',
       '购买后回访', NULL, p.purchased_on, NULL::date, NULL::date, 'purchase:' || p.id,
       'followup_3d:' || p.member || ':' || p.purchased_on, p.purchased_at,
       NULL::timestamptz, NULL
FROM pplan p ORDER BY p.member, p.purchased_on, p.id
"""

# The formula's run-out by the label's days of supply; the next purchase supersedes it.
SEED_REPLENISH = """
SELECT 'replenish', p.member, p.store, p.advisor, 'formula',
       '奶粉预计' || extract(month FROM x.run_out) || '月' || extract(day FROM x.run_out) || '日用完',
       NULL, x.run_out, NULL::date, NULL::date, 'purchase:' || p.id,
       'replenish:' || p.member || ':formula:' || p.id, p.purchased_at,
       lead(p.purchased_at) OVER (PARTITION BY p.member ORDER BY p.purchased_at, p.id),
       'superseded'
FROM pplan p
JOIN product pr ON pr.id = p.product1
CROSS JOIN LATERAL (SELECT p.purchased_on + pr.days_of_supply * p.q1 AS run_out) x
"""

# A purchase day followed by more than the rule's quiet days (or by nothing yet):
# the daily run raises it on the day the silence reaches them; a purchase cancels it.
SEED_REACTIVATE = """
SELECT 'reactivate', d.member, d.store, d.advisor, '', '已' || r.due_offset_days || '天未购买',
       NULL, d.day, NULL::date, NULL::date, 'member:' || d.member,
       'reactivate:' || d.member || ':' || d.day, NULL::timestamptz, d.next_at, 'purchased'
FROM (
    SELECT member, store, advisor, day, lead(day) OVER w AS next_day, lead(first_at) OVER w AS next_at
    FROM (SELECT member, min(store) AS store, min(advisor) AS advisor, purchased_on AS day,
                 min(purchased_at) AS first_at
          FROM pplan GROUP BY member, purchased_on) days
    WINDOW w AS (PARTITION BY member ORDER BY day)
) d
JOIN mplan m ON m.id = d.member
JOIN playbook_rule r ON r.kind = 'reactivate'
WHERE NOT m.do_not_contact AND (d.next_day IS NULL OR d.next_day > d.day + r.due_offset_days)
"""

# Babies turning 6, 12 or 36 months, of members who bought formula before the due day.
SEED_STAGE_UP = """
SELECT 'stage_up', m.id, m.store, m.owning_advisor, s.months::text,
       '宝宝满' || s.months || '个月,准备转段', NULL,
       (b.birth_date + make_interval(months => s.months))::date, NULL::date, NULL::date,
       'baby:' || b.id, 'stage_up:' || b.id || ':' || s.months, NULL::timestamptz,
       NULL::timestamptz, NULL
FROM baby b
JOIN mplan m ON m.id = b.member
JOIN mfirst f ON f.member = m.id
JOIN playbook_rule r ON r.kind = 'stage_up'
CROSS JOIN unnest($2::int4[]) AS s (months)
WHERE NOT m.do_not_contact AND b.birth_date IS NOT NULL
  AND (b.birth_date + make_interval(months => s.months))::date + r.due_offset_days > f.first_on
"""

SEED_MILESTONE = """
SELECT 'milestone', m.id, m.store, m.owning_advisor, s.months::text,
       '宝宝满' || s.months || '个月', NULL,
       (b.birth_date + make_interval(months => s.months))::date, NULL::date, NULL::date,
       'baby:' || b.id, 'milestone:' || b.id || ':' || s.months, NULL::timestamptz,
       NULL::timestamptz, NULL
FROM baby b
JOIN mplan m ON m.id = b.member
JOIN playbook_rule r ON r.kind = 'milestone'
CROSS JOIN LATERAL (SELECT value::int4 AS months
                    FROM json_array_elements_text(r.params -> 'ages_months')) AS s
WHERE NOT m.do_not_contact AND b.birth_date IS NOT NULL
  AND (b.birth_date + make_interval(months => s.months))::date + r.due_offset_days > m.joined_on
"""

INSERT_CAMPAIGN = f"""
INSERT INTO campaign (name, starts_on, ends_on, script, segment, created_at)
VALUES ($1, $2, $3, $4, $5::json, ($2::date - 7 + time '10:00') AT TIME ZONE '{TZ}')
RETURNING id
"""

# The members of the segment who had joined by its start (tasks.campaigns): $2 the
# campaign, $3 its start, $4 its end, $5 a region or NULL, $6 and $7 the babies' ages
# in months or NULL, $8 its name, $9 its script.
SEED_CAMPAIGN = """
SELECT 'campaign', m.id, m.store, m.owning_advisor, $2::int4::text, $8::text, $9::text,
       $3::date, $3::date, $4::date, 'campaign:' || $2::int4,
       'campaign:' || $2::int4 || ':' || m.id, NULL::timestamptz, NULL::timestamptz, NULL
FROM mplan m
JOIN store s ON s.id = m.store
WHERE NOT m.do_not_contact AND m.joined_on < $3::date
  AND ($5::text IS NULL OR s.region = $5::text)
  AND ($6::int4 IS NULL OR EXISTS (
      SELECT 1 FROM baby b WHERE b.member = m.id
        AND b.birth_date > ($3::date - make_interval(months => $7::int4 + 1))::date
        AND b.birth_date <= ($3::date - make_interval(months => $6::int4))::date))
"""

# A call's asks: a callback a few days on (some reached members), a delivery the next
# day (every delivery_requested).
SEED_ASKED = f"""
SELECT 'callback', t.member, t.store, t.assignee, '', '会员约定回访', NULL,
       (t.done_at AT TIME ZONE '{TZ}')::date + 1 + pg_temp.rnd(t.id, 70, 5)::int4,
       NULL::date, NULL::date, 'task:' || t.id,
       'callback:' || t.id || ':'
           || ((t.done_at AT TIME ZONE '{TZ}')::date + 1 + pg_temp.rnd(t.id, 70, 5)::int4),
       t.done_at, NULL::timestamptz, NULL
FROM tplan t WHERE t.result = 'reached' AND pg_temp.rnd(t.id, 71, 100) < 15
UNION ALL
SELECT 'delivery', t.member, t.store, t.assignee, '', '会员要求送货上门', NULL,
       (t.done_at AT TIME ZONE '{TZ}')::date + 1, NULL::date, NULL::date, 'task:' || t.id,
       'delivery:' || t.id || ':' || ((t.done_at AT TIME ZONE '{TZ}')::date + 1), t.done_at,
       NULL::timestamptz, NULL
FROM tplan t WHERE t.result = 'delivery_requested'
"""

_CALL_RATE = (
    "CASE s.kind " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in CALL_RATES.items()) + " END"
)
_REACHED = "(" + ", ".join(f"'{r}'" for r in REACHED_RESULTS) + ")"
# What became of each seeded task by $1 (today's midnight): a call on a day of its
# window (done, unless what ends it came first: then cancelled), else expired once
# its window is over, else open. A few expired tasks were called after they lapsed
# (the outcome is recorded, not applied: contacted, maybe reached). Ids follow $2.
TASK_STATES = f"""
SELECT $2::int8 + row_number() OVER (ORDER BY s.created_at, s.dedupe_key) AS id,
       s.kind, s.member, s.store, s.assignee, s.topic, s.reason, s.script, s.anchor_on,
       s.due_on, s.expires_on, s.priority, s.cause, s.dedupe_key, s.created_at,
       st.status,
       CASE st.status WHEN 'done' THEN c.result WHEN 'cancelled' THEN s.end_reason
                      WHEN 'expired' THEN 'expired' END AS status_reason,
       CASE WHEN st.status = 'done' THEN d.call_at END AS done_at,
       CASE WHEN st.status = 'done' THEN c.result END AS result,
       CASE WHEN st.status = 'done' THEN d.call_at
            WHEN st.status = 'expired' AND d.late < 6 AND d.late_at < $1 THEN d.late_at
       END AS contacted_at,
       (st.status = 'done' OR (st.status = 'expired' AND d.late < 6 AND d.late_at < $1))
           AND c.result IN {_REACHED} AS reached,
       CASE st.status WHEN 'done' THEN d.call_at WHEN 'cancelled' THEN s.ends_at
                      WHEN 'expired' THEN (s.expires_on + 1 + time '00:30') AT TIME ZONE '{TZ}'
                      ELSE s.created_at END AS updated_at
FROM tseed s
CROSS JOIN LATERAL (SELECT hashtextextended(s.dedupe_key, 0) AS key) k
CROSS JOIN LATERAL (
    SELECT (s.due_on + pg_temp.rnd(k.key, 61, s.expires_on - s.due_on + 1)::int4
            + time '09:30' + pg_temp.rnd(k.key, 62, 41400) * interval '1 second')
               AT TIME ZONE '{TZ}' AS call_at,
           pg_temp.rnd(k.key, 60, 1000) < {_CALL_RATE} AS calls,
           pg_temp.rnd(k.key, 63, 100) AS pick,
           pg_temp.rnd(k.key, 64, 100) AS late,
           (s.expires_on + 1 + pg_temp.rnd(k.key, 65, 3)::int4 + time '10:00')
               AT TIME ZONE '{TZ}' AS late_at
) d
CROSS JOIN LATERAL (
    SELECT CASE WHEN d.pick < 40 THEN 'reached' WHEN d.pick < 52 THEN 'will_buy'
                WHEN d.pick < 55 THEN 'purchased' WHEN d.pick < 58 THEN 'delivery_requested'
                WHEN d.pick < 84 THEN 'no_answer' WHEN d.pick < 95 THEN 'declined'
                ELSE 'wrong_number' END AS result
) c
CROSS JOIN LATERAL (
    SELECT CASE WHEN d.calls AND d.call_at < $1 AND d.call_at >= s.created_at
                     AND (s.ends_at IS NULL OR d.call_at < s.ends_at) THEN 'done'
                WHEN s.ends_at < $1
                     AND s.ends_at < (s.expires_on + 1 + time '00:00') AT TIME ZONE '{TZ}'
                    THEN 'cancelled'
                WHEN s.expires_on < $3::date THEN 'expired'
                ELSE 'open' END AS status
) st
"""

TASK_PLAN = f"CREATE TEMP TABLE tplan ON COMMIT DROP AS {TASK_STATES}"
TASK_PLAN_MORE = f"INSERT INTO tplan {TASK_STATES}"

# Each purchase converts the latest reached task of its member done in the 7 days
# before it; each task converts once (its first such purchase).
CONVERSIONS = f"""
CREATE TEMP TABLE tconv ON COMMIT DROP AS
SELECT DISTINCT ON (task) task, purchase, total_fen
FROM (
    SELECT DISTINCT ON (p.id) t.id AS task, p.id AS purchase, p.total_fen, p.purchased_at
    FROM tplan t
    JOIN pplan p ON p.member = t.member AND p.purchased_at >= t.done_at
                AND p.purchased_at < t.done_at + interval '{CONVERSION_DAYS} days'
    WHERE t.status = 'done' AND t.reached
    ORDER BY p.id, t.done_at DESC, t.id DESC
) converted
ORDER BY task, purchased_at, purchase
"""

_STAGE_FOR = " ".join(f"WHEN '{m}' THEN {stage}" for m, stage in STAGE_BOUNDARIES)
KEPT = f"""
CREATE TEMP TABLE tkept ON COMMIT DROP AS
SELECT t.id, min(p.purchased_on) AS kept_on
FROM tplan t
JOIN pplan p ON p.member = t.member AND p.purchased_on >= t.anchor_on
            AND p.purchased_on <= t.anchor_on + {KEEP_DAYS}
JOIN product pr ON pr.id = p.product1
WHERE t.kind = 'stage_up' AND pr.stage >= CASE t.topic {_STAGE_FOR} END
GROUP BY t.id
"""

INSERT_TASKS = """
INSERT INTO task (id, kind, member, store, assignee, topic, reason, script, anchor_on, due_on,
                  expires_on, priority, status, status_reason, cause, dedupe_key, done_at,
                  result, converted_purchase, converted_fen, contacted_at, reached, kept_on,
                  created_at, updated_at)
SELECT t.id, t.kind, t.member, t.store, t.assignee, t.topic, t.reason, t.script, t.anchor_on,
       t.due_on, t.expires_on, t.priority, t.status, t.status_reason, t.cause, t.dedupe_key,
       t.done_at, t.result, c.purchase, c.total_fen, t.contacted_at, t.reached, k.kept_on,
       t.created_at, t.updated_at
FROM tplan t
LEFT JOIN tconv c ON c.task = t.id
LEFT JOIN tkept k ON k.id = t.id
ORDER BY t.id
"""

# The score ledger's facts of the tasks (incentives.ledger): a task_done on the call's
# day for its advisor, a task_converted on the converting purchase's day.
INSERT_TASK_FACTS = f"""
INSERT INTO score_fact (advisor, store, kind, amount, counts_on, counts_week, counts_month,
                        booked_month, source_key, member, purchase, task, recorded_at)
SELECT t.assignee, t.store, f.kind, 1, f.day, to_char(f.day, 'IYYY-"W"IW'),
       to_char(f.day, 'YYYY-MM'), to_char(f.day, 'YYYY-MM'), f.kind || ':' || t.id || ':1',
       t.member, NULL::bigint, t.id, f.at
FROM tplan t
LEFT JOIN tconv c ON c.task = t.id
LEFT JOIN pplan p ON p.id = c.purchase
CROSS JOIN LATERAL (VALUES ('task_done', (t.done_at AT TIME ZONE '{TZ}')::date, t.done_at),
                           ('task_converted', p.purchased_on, p.purchased_at)) AS f (kind, day, at)
WHERE t.status = 'done' AND t.assignee IS NOT NULL AND f.day IS NOT NULL
"""


# --- the summaries, summed once (the triggers' work when they are off) ---------------
#
# As the migrations backfill them and the triggers keep them: each store-day (and
# store, due day, kind and campaign) first, then counted in its day, ISO week and month.

_KEYS = (
    "(VALUES (to_char({d}, 'YYYY-MM-DD')), (to_char({d}, 'IYYY-\"W\"IW')),"
    " (to_char({d}, 'YYYY-MM'))) AS k (period)"
)

SUM_STORE_DAY = f"""
INSERT INTO store_day (store, period, receipts, revenue_fen, repeat_fen, new_members)
SELECT c.store, k.period, SUM(c.n), SUM(c.revenue), SUM(c.repeat), SUM(c.members)
FROM (
    SELECT store, purchased_on AS day, COUNT(*) AS n, SUM(total_fen) AS revenue,
           SUM(CASE WHEN repeat THEN total_fen ELSE 0 END) AS repeat, 0 AS members
    FROM purchase GROUP BY store, purchased_on
    UNION ALL
    SELECT home_store, joined_on, 0, 0, 0, COUNT(*) FROM member GROUP BY home_store, joined_on
) c
CROSS JOIN LATERAL {_KEYS.format(d="c.day")}
GROUP BY c.store, k.period
"""

SUM_TASK_SUMMARY = f"""
INSERT INTO task_summary (store, period, kind, campaign, made, cancelled, contacted, reached,
                          done, expired, converted, converted_fen, kept)
SELECT c.store, k.period, c.kind, c.campaign, SUM(c.made), SUM(c.cancelled),
       SUM(c.contacted), SUM(c.reached), SUM(c.done), SUM(c.expired), SUM(c.converted),
       SUM(c.converted_fen), SUM(c.kept)
FROM (
    SELECT store, due_on AS day, kind,
           CASE WHEN kind = 'campaign' THEN CAST(topic AS integer) ELSE 0 END AS campaign,
           COUNT(*) AS made,
           SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled,
           SUM(CASE WHEN contacted_at IS NOT NULL THEN 1 ELSE 0 END) AS contacted,
           SUM(CASE WHEN reached THEN 1 ELSE 0 END) AS reached,
           SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done,
           SUM(CASE WHEN status = 'expired' THEN 1 ELSE 0 END) AS expired,
           SUM(CASE WHEN converted_purchase IS NOT NULL THEN 1 ELSE 0 END) AS converted,
           SUM(COALESCE(converted_fen, 0)) AS converted_fen,
           SUM(CASE WHEN kept_on IS NOT NULL AND status <> 'cancelled' THEN 1 ELSE 0 END)
               AS kept
    FROM task GROUP BY 1, 2, 3, 4
) c
CROSS JOIN LATERAL {_KEYS.format(d="c.day")}
GROUP BY c.store, k.period, c.kind, c.campaign
"""


# --- the check: every summary row equals the raw rows it sums ------------------------

# RN3's flag as stored, against the previous purchase recomputed.
CHECK_REPEAT = f"""
SELECT count(*) FILTER (WHERE repeat <> rep) AS wrong, count(*) AS n
FROM (SELECT repeat,
             coalesce(purchased_on - lag(purchased_on) OVER (PARTITION BY member
                                                             ORDER BY purchased_at, id)
                      <= {REPEAT_WINDOW_DAYS}, false) AS rep
      FROM purchase) p
"""
_STORE_DAY_FIGURES = ("receipts", "revenue_fen", "repeat_fen", "new_members")
CHECK_STORE_DAY = f"""
SELECT count(*) FILTER (WHERE {" OR ".join(f"coalesce(d.{f}, 0) <> coalesce(r.{f}, 0)" for f in _STORE_DAY_FIGURES)}) AS wrong,
       count(d.id) AS n
FROM store_day d
FULL JOIN (
    SELECT store, period, sum(receipts) AS receipts, sum(revenue_fen) AS revenue_fen,
           sum(repeat_fen) AS repeat_fen, sum(new_members) AS new_members
    FROM (
        SELECT p.store, k.period, 1 AS receipts, p.total_fen AS revenue_fen,
               CASE WHEN p.repeat THEN p.total_fen ELSE 0 END AS repeat_fen, 0 AS new_members
        FROM purchase p CROSS JOIN LATERAL {_KEYS.format(d="p.purchased_on")}
        UNION ALL
        SELECT m.home_store, k.period, 0, 0, 0, 1
        FROM member m CROSS JOIN LATERAL {_KEYS.format(d="m.joined_on")}
    ) raw
    GROUP BY store, period
) r ON r.store = d.store AND r.period = d.period
"""
_TASK_FIGURES = {
    "made": "1",
    "cancelled": "(t.status = 'cancelled')::int",
    "contacted": "(t.contacted_at IS NOT NULL)::int",
    "reached": "t.reached::int",
    "done": "(t.status = 'done')::int",
    "expired": "(t.status = 'expired')::int",
    "converted": "(t.converted_purchase IS NOT NULL)::int",
    "converted_fen": "coalesce(t.converted_fen, 0)",
    "kept": "(t.kept_on IS NOT NULL AND t.status <> 'cancelled')::int",
}
CHECK_TASK_SUMMARY = f"""
SELECT count(*) FILTER (WHERE {" OR ".join(f"coalesce(s.{f}, 0) <> coalesce(r.{f}, 0)" for f in _TASK_FIGURES)}) AS wrong,
       count(s.id) AS n
FROM task_summary s
FULL JOIN (
    SELECT t.store, k.period, t.kind,
           CASE WHEN t.kind = 'campaign' THEN t.topic::int ELSE 0 END AS campaign,
           {", ".join(f"sum({e}) AS {f}" for f, e in _TASK_FIGURES.items())}
    FROM task t CROSS JOIN LATERAL {_KEYS.format(d="t.due_on")}
    GROUP BY 1, 2, 3, 4
) r ON r.store = s.store AND r.period = s.period AND r.kind = s.kind AND r.campaign = s.campaign
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
            # Rows made by arithmetic need no foreign-key checks, and the summaries are
            # summed once at the end rather than by the triggers of each statement:
            # both go with the replication role (a superuser's setting; without it
            # the triggers run, which is slower and comes to the same rows). The big
            # tables' secondary indexes are built once, after their rows.
            bulk = await bulk_load(conn)
            rebuilt = await drop_indexes(conn, BULK_TABLES) if bulk else []
            await build_rows(conn, steps, args, today, start)
            if bulk:
                await conn.execute("SET LOCAL session_replication_role = DEFAULT")
                await steps.run("store_day (summed)", conn.execute(SUM_STORE_DAY))
                await steps.run("task_summary (summed)", conn.execute(SUM_TASK_SUMMARY))
                started = time.perf_counter()
                for statement in rebuilt:
                    await conn.execute(statement)
                print(
                    f"indexes and unique constraints of {', '.join(BULK_TABLES)}:"
                    f" {len(rebuilt):,} built in {time.perf_counter() - started:.1f} s",
                    flush=True,
                )
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


# The tables of millions of rows: loaded without their secondary indexes (and unique
# constraints no foreign key refers to), which are built afterwards from their own
# definitions, in the same transaction.
BULK_TABLES = (
    "purchase",
    "purchase_line",
    "points_ledger",
    "points_lot",
    "score_fact",
    "task",
    "store_day",
    "task_summary",
)
SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text AS index, pg_get_indexdef(i.indexrelid) AS definition,
       c.conname AS name, pg_get_constraintdef(c.oid) AS constraint_definition
FROM pg_index i
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
WHERE i.indrelid = $1::regclass AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f'
                  AND f.conindid = i.indexrelid)
ORDER BY 1
"""


async def drop_indexes(conn: asyncpg.Connection, tables: tuple[str, ...]) -> list[str]:
    """Drops the tables' secondary indexes; returns the statements that make them again."""
    rebuild = []
    for table in tables:
        for row in await conn.fetch(SECONDARY_INDEXES, table):
            if row["name"] is None:
                await conn.execute(f"DROP INDEX {row['index']}")
                rebuild.append(row["definition"])
            else:
                await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{row["name"]}"')
                rebuild.append(
                    f'ALTER TABLE {table} ADD CONSTRAINT "{row["name"]}"'
                    f" {row['constraint_definition']}"
                )
    return rebuild


async def bulk_load(conn: asyncpg.Connection) -> bool:
    """Triggers (foreign keys' and the summaries') off for this transaction, if allowed."""
    try:
        async with conn.transaction():  # a savepoint: a refusal leaves the rest intact
            await conn.execute("SET LOCAL session_replication_role = replica")
    except asyncpg.InsufficientPrivilegeError:
        print("triggers stay on (not a superuser): the summaries follow each statement")
        return False
    return True


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
    await steps.run("points lots", conn.execute(INSERT_LOTS))
    await steps.run(
        "member balances and last purchases (updated)", conn.execute(UPDATE_MEMBER_CACHES)
    )
    await steps.run("score ledger", conn.execute(INSERT_SCORE_FACTS))
    await build_tasks(conn, steps, today)
    for table in EXPLICIT_ID_TABLES:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"coalesce(max(id), 0) + 1, false) FROM {table}"
        )


async def build_tasks(conn: asyncpg.Connection, steps: Steps, today: date) -> None:
    """The playbook's history (see TASK_STATES): seeded kind by kind, settled, then
    inserted in one statement, whose trigger writes their summaries."""
    now = datetime.combine(today, dt_time(0), ZoneInfo(TZ))
    await conn.execute(TASK_SEED)
    await conn.execute(
        "CREATE TEMP TABLE mfirst ON COMMIT DROP AS"
        " SELECT member, min(purchased_on) AS first_on FROM pplan GROUP BY member"
    )
    seeds: list[tuple[str, str, tuple[object, ...]]] = [
        ("welcome", SEED_WELCOME, ()),
        ("followup_3d", SEED_FOLLOWUP, ()),
        ("replenish", SEED_REPLENISH, ()),
        ("reactivate", SEED_REACTIVATE, ()),
        ("stage_up", SEED_STAGE_UP, ([m for m, _ in STAGE_BOUNDARIES],)),
        ("milestone", SEED_MILESTONE, ()),
    ]
    for kind, source, extra in seeds:
        await steps.run(f"task plan: {kind}", conn.execute(SEED.format(source=source), now, *extra))
    for name, months_back, offset, days, segment, script in CAMPAIGNS:
        starts = months_before(today.replace(day=1), months_back) + timedelta(days=offset)
        ends = starts + timedelta(days=days - 1)
        campaign = await conn.fetchval(
            INSERT_CAMPAIGN, name, starts, ends, script, json.dumps(segment, ensure_ascii=False)
        )
        ages = segment.get("baby_age_months") or [None, None]
        await steps.run(
            f"task plan: campaign {campaign} {name} ({starts} to {ends})",
            conn.execute(
                SEED.format(source=SEED_CAMPAIGN),
                now,
                campaign,
                starts,
                ends,
                segment.get("region"),
                ages[0],
                ages[1],
                name,
                script,
            ),
        )
    await steps.run("task outcomes (temporary)", conn.execute(TASK_PLAN, now, 0, today))
    await conn.execute("TRUNCATE tseed")
    await conn.execute(SEED.format(source=SEED_ASKED), now)
    top = await conn.fetchval("SELECT coalesce(max(id), 0) FROM tplan")
    await steps.run(
        "task plan: callbacks and deliveries asked for",
        conn.execute(TASK_PLAN_MORE, now, top, today),
    )
    await steps.run("conversions (temporary)", conn.execute(CONVERSIONS))
    await steps.run("kept stage-ups (temporary)", conn.execute(KEPT))
    await steps.run("tasks", conn.execute(INSERT_TASKS))
    await steps.run("score ledger of tasks", conn.execute(INSERT_TASK_FACTS))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # piccolo_conf picks its engine from DATABASE_URL when first imported.
    os.environ["DATABASE_URL"] = args.database_url
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from advisor_api import cli
    from core import clock

    steps = Steps()
    asyncio.run(cli.migrate())
    print(f"migrations: applied in {time.perf_counter() - steps.started:.1f} s", flush=True)
    today = clock.today(ZoneInfo(TZ))
    asyncio.run(build(args, today, steps))
    asyncio.run(build_totals(steps, today))
    asyncio.run(check_summaries(args.database_url))
    steps.total()


async def build_totals(steps: Steps, today: date) -> None:
    """The activity snapshots by the daily job's own step (yesterday's and the past
    year's month ends), and the league-table totals by the service's own rebuild, a
    month at a time."""
    from core.db import connection_pool, fetch
    from incentives.rebuild import open_months, rebuild
    from members.activity import take_snapshots

    async with connection_pool():
        started = time.perf_counter()
        made = await take_snapshots(today, TZ)
        print(
            f"activity snapshots: {made:,} store-days in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        await fetch("VACUUM (ANALYZE) store_activity")
        for month in await open_months():
            report = await rebuild(month)
            print(
                f"league totals {month}: {report.advisor_rows:,} advisor and"
                f" {report.store_rows:,} store rows in {report.seconds:.1f} s",
                flush=True,
            )
        await fetch("VACUUM (ANALYZE) advisor_score, store_score")


async def check_summaries(url: str) -> None:
    """Every store_day and task_summary row against the raw rows it sums (every day,
    ISO week and month), and RN3's flags against the purchases before them."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET work_mem = '256MB'")
        wrong = 0
        for label, sql in (
            ("purchase.repeat", CHECK_REPEAT),
            ("store_day", CHECK_STORE_DAY),
            ("task_summary", CHECK_TASK_SUMMARY),
        ):
            started = time.perf_counter()
            row = await conn.fetchrow(sql)
            wrong += row["wrong"]
            print(
                f"check: {label}: {row['n']:,} rows, {row['wrong']:,} unlike the raw rows"
                f" ({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
    finally:
        await conn.close()
    if wrong:
        raise SystemExit("error: summaries differ from the raw rows they sum")


if __name__ == "__main__":
    main()
