"""A small but believable demo chain for ``make run``: five stores in two regions,
two advisors each, a product range across formula stages, and members with babies
of every age and months of purchases up to today. Deterministic: the same seed gives
the same chain, dated back from the domain clock's today."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from advisor_api.demo_history import live_history
from advisor_api.demo_o2o import DemoOrders
from core import clock
from members import accounts, babies, registry
from members.schemas import (
    AdvisorIn,
    BabyIn,
    MemberRegistration,
    ProductIn,
    PurchaseIn,
    PurchaseLineIn,
    StoreIn,
)
from members.stores import store_by_code
from members.tables import PosKey, Store

STORES = [
    ("S0001", "广州天河母婴店", "华南", 23.13, 113.32),
    ("S0002", "广州海珠母婴店", "华南", 23.08, 113.31),
    ("S0003", "深圳南山母婴店", "华南", 22.53, 113.93),
    ("S0004", "上海徐汇母婴店", "华东", 31.19, 121.43),
    ("S0005", "杭州西湖母婴店", "华东", 30.26, 120.13),
]
ADVISOR_NAMES = ["陈晓燕", "林佳", "黄丽娟", "周敏", "吴婷", "郑琳", "王芳", "李娜", "张静", "刘洋"]
# (sku, name, category, stage, days of supply per unit, points eligible, price)
PRODUCTS = [
    ("F1-800", "贝塔星 1段 婴儿配方奶粉 800g", "formula", 1, 12, True, "358.00"),
    ("F2-800", "贝塔星 2段 较大婴儿配方奶粉 800g", "formula", 2, 14, True, "338.00"),
    ("F3-800", "贝塔星 3段 幼儿配方奶粉 800g", "formula", 3, 16, True, "318.00"),
    ("F4-800", "贝塔星 4段 儿童成长奶粉 800g", "formula", 4, 18, True, "288.00"),
    ("PB-30", "益生菌冲剂 30袋", "probiotic", None, 30, True, "198.00"),
    ("CE-250", "高铁米粉 250g", "cereal", None, 20, True, "68.00"),
    ("CA-WIPE", "婴儿湿巾 80抽×6包", "care", None, None, False, "59.90"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
BABY_NAMES = ["小宝", "乐乐", "豆豆", "果果", "朵朵", "糖糖", "安安", "多多", "米米", "可可"]
MEMBERS_PER_STORE = 36
HISTORY_DAYS = 180

# Logins the README lists. Demo only: never seed a production database.
DEMO_PASSWORD = "tiantian123"
HQ_PHONE = "13900000000"
OWNER_PHONE = "13900000001"  # owns S0001 and S0002
OWNER2_PHONE = "13900000002"  # owns S0004
REGION_PHONE = "13900000003"  # 华南's regional marketer (营销通)


def advisor_code(n: int) -> str:
    return f"A{n:05d}"


def advisor_phone(n: int) -> str:
    return f"1380000{n:04d}"


def demo_pos_key(store_code: str) -> str:
    return f"{accounts.POS_KEY_PREFIX}demo_{store_code.lower()}"


async def is_empty() -> bool:
    return not await Store.exists()


async def seed_demo(progress: Callable[[str], None] = lambda _: None) -> str:
    """Build the demo chain if the database has no stores; returns what was done."""
    if not await is_empty():
        return "the database already has stores: demo chain not seeded"
    rng = random.Random(2026)
    today = clock.today(clock.zone(clock.DEFAULT_TIMEZONE))
    await _registry()
    prices = {p[0]: Decimal(p[6]) for p in PRODUCTS}
    joins, receipts = await _members(rng, today, prices)
    orders = DemoOrders(joins, STORES)
    await orders.open()
    lived = await live_history(
        joins, receipts, today, rng, progress, lambda day: orders.day(day, today)
    )
    await orders.now()
    members = sum(len(m) for m in joins.values())
    return (
        f"seeded {len(STORES)} stores, {len(ADVISOR_NAMES)} advisors, {members} members,"
        f" {lived['receipts']} receipts, {lived['calls']} calls, {lived['redemptions']}"
        f" redemptions, {lived['returns']} returns, {lived['targets']} targets,"
        f" {orders.made} O2O orders"
    )


async def _registry() -> None:
    """Stores, advisors with their logins, products, and the other demo logins."""
    for code, name, region, lat, lng in STORES:
        await registry.put_store(
            code, StoreIn(name=name, region=region, latitude=lat, longitude=lng)
        )
    for n, adv_name in enumerate(ADVISOR_NAMES, start=1):
        store_code = STORES[(n - 1) // 2][0]
        await registry.put_advisor(
            advisor_code(n), AdvisorIn(name=adv_name, phone=advisor_phone(n), store_code=store_code)
        )
        await accounts.create_user(
            "advisor", advisor_phone(n), DEMO_PASSWORD, advisor_code=advisor_code(n)
        )
    for sku, pname, category, stage, days, eligible, _ in PRODUCTS:
        await registry.put_product(
            sku,
            ProductIn(
                name=pname,
                category=category,
                stage=stage,
                days_of_supply=days,
                points_eligible=eligible,
            ),
        )
    await accounts.create_user("hq", HQ_PHONE, DEMO_PASSWORD)
    await accounts.create_user("owner", OWNER_PHONE, DEMO_PASSWORD, store_codes=["S0001", "S0002"])
    await accounts.create_user("owner", OWNER2_PHONE, DEMO_PASSWORD, store_codes=["S0004"])
    await accounts.create_user("region", REGION_PHONE, DEMO_PASSWORD, region="华南")


async def _members(
    rng: random.Random, today: date, prices: dict[str, Decimal]
) -> tuple[dict[str, list[MemberRegistration]], dict[str, list[PurchaseIn]]]:
    """Each store's members (joining on their day) and their receipts, by store code."""
    receipts: dict[str, list[PurchaseIn]] = {}
    joins: dict[str, list[MemberRegistration]] = {}
    member_no = 0
    for store_index, (code, *_rest) in enumerate(STORES):
        store = await store_by_code(code)
        await PosKey.insert(
            PosKey(
                store=store.id, key_hash=accounts.pos_key_hash(demo_pos_key(code)), prefix="demo"
            )
        )
        receipts[code], joins[code] = [], []
        for _ in range(MEMBERS_PER_STORE):
            member_no += 1
            adv = advisor_code(store_index * 2 + 1 + rng.randrange(2))
            phone = f"137{member_no:08d}"
            # Babies from two months before birth to four years old.
            age_days = rng.randint(-60, 4 * 365)
            joined = today - timedelta(days=rng.randint(2, HISTORY_DAYS))
            baby = (
                BabyIn(name=rng.choice(BABY_NAMES), birth_date=today - timedelta(days=age_days))
                if age_days >= 0
                else BabyIn(name="", due_date=today - timedelta(days=age_days))
            )
            if baby.birth_date is not None and baby.birth_date > joined:
                joined = baby.birth_date
            joins[code].append(
                MemberRegistration(
                    phone=phone,
                    name=f"{rng.choice(SURNAMES)}女士",
                    advisor_code=adv,
                    registered_at=_at(joined, 10),
                    babies=[baby],
                    do_not_contact=rng.random() < 0.03,
                )
            )
            if baby.birth_date is None:
                continue
            receipts[code].extend(
                _history(rng, code, member_no, phone, adv, baby.birth_date, joined, today, prices)
            )
    return joins, receipts


def _at(day: date, hour: int) -> datetime:
    local = datetime.combine(day, time(hour, 0), tzinfo=clock.zone(clock.DEFAULT_TIMEZONE))
    return local.astimezone(UTC)


def _history(
    rng: random.Random,
    store_code: str,
    member_no: int,
    phone: str,
    adv: str,
    birth: date,
    joined: date,
    today: date,
    prices: dict[str, Decimal],
) -> list[PurchaseIn]:
    """Formula of the baby's stage every couple of weeks since joining, with a
    probiotic or cereal now and then; a few members have gone quiet lately."""
    receipts = []
    day = joined
    quiet_from = today - timedelta(days=rng.randint(46, 80)) if rng.random() < 0.15 else today
    n = 0
    while day <= min(today, quiet_from) - timedelta(days=1):
        stage = babies.stage_for_age(max(0, babies.age_in_months(birth, day)))
        sku = f"F{stage}-800"
        qty = rng.choice([1, 1, 2])
        lines = [PurchaseLineIn(sku=sku, quantity=qty, amount=str(prices[sku] * qty))]
        if rng.random() < 0.3:
            extra = rng.choice(["PB-30", "CE-250", "CA-WIPE"])
            lines.append(PurchaseLineIn(sku=extra, quantity=1, amount=str(prices[extra])))
        n += 1
        receipts.append(
            PurchaseIn(
                receipt_id=f"{store_code}-{member_no:05d}-{n:03d}",
                member_phone=phone,
                advisor_code=adv,
                purchased_at=_at(day, rng.randint(9, 20)),
                lines=lines,
            )
        )
        day += timedelta(days=qty * rng.randint(11, 17))
    return receipts
