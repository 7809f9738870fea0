"""The points books hold whatever happens, on random histories: receipts (some under a
promotion), redemptions, whole and partial returns, and expiry passes on random days
(run twice), with points living one month so that lots lapse inside the history.

After every step: each member's balance equals the sum of their lots' remaining
points and the sum of their ledger rows, and is never negative; points issued −
redeemed − reversed − expired equal the sum of the balances; the store's settlement
over every month says the same; and an expiry pass run again changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db import fetch, in_list, in_write_transaction
from members.lots import expire
from tests.conftest import FORMULA_1, PROBIOTIC, Shop, make_shop, unique_code, unique_phone
from tests.test_points_money import DEFAULT_POLICY

START = date(2026, 8, 1)
DAYS = (date(2026, 11, 20) - START).days  # up to the suite's today

step = st.one_of(
    st.tuples(st.just("buy"), st.integers(0, 3), st.integers(0, DAYS), st.integers(1, 900)),
    st.tuples(st.just("redeem"), st.integers(0, 3), st.integers(1, 1500)),
    st.tuples(st.just("return"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("expire"), st.integers(0, DAYS + 60)),
)


@pytest.fixture
async def short_lived_points(client: httpx.AsyncClient, hq: dict[str, str]) -> AsyncIterator[None]:
    policy = {**DEFAULT_POLICY, "expiry_months": 1}
    assert (await client.put("/hq/v1/points-policy", json=policy, headers=hq)).status_code == 200
    yield
    assert (
        await client.put("/hq/v1/points-policy", json=DEFAULT_POLICY, headers=hq)
    ).status_code == 200


async def books(phones: list[str], store_code: str) -> dict[str, Any]:
    cond, args = in_list(phones, "text")
    members = await fetch(
        "SELECT m.id, m.points_balance AS balance,"
        " (SELECT COALESCE(SUM(l.earned - l.used - l.expired), 0) FROM points_lot l"
        "  WHERE l.member = m.id) AS lots,"
        " (SELECT COALESCE(SUM(p.points), 0) FROM points_ledger p WHERE p.member = m.id) AS ledger,"
        " (SELECT COUNT(*) FROM points_lot l WHERE l.member = m.id"
        "  AND l.earned - l.used - l.expired < 0) AS negative_lots"
        f" FROM member m WHERE m.phone {cond}",
        *args,
    )
    kinds = await fetch(
        "SELECT p.kind, SUM(p.points) AS points FROM points_ledger p JOIN member m"
        f" ON m.id = p.member WHERE m.phone {cond} GROUP BY p.kind",
        *args,
    )
    settled = await fetch(
        "SELECT SUM(CASE WHEN l.kind = 'earn' THEN l.points ELSE 0 END) AS issued,"
        " -SUM(CASE WHEN l.kind <> 'earn' THEN l.points ELSE 0 END) AS taken"
        " FROM points_ledger l JOIN store s ON s.id = l.store WHERE s.code = {}",
        store_code,
    )
    return {
        "members": members,
        "kinds": {r["kind"]: int(r["points"]) for r in kinds},
        "store": settled[0],
    }


def check(found: dict[str, Any]) -> None:
    total = 0
    for m in found["members"]:
        assert int(m["balance"]) == int(m["lots"]) == int(m["ledger"]) >= 0, m
        assert int(m["negative_lots"]) == 0, m
        total += int(m["balance"])
    kinds = found["kinds"]
    issued = kinds.get("earn", 0)
    taken = -sum(kinds.get(k, 0) for k in ("redeem", "reverse", "expire"))
    assert issued - taken == total
    assert int(found["store"]["issued"] or 0) - int(found["store"]["taken"] or 0) == total


async def play(
    client: httpx.AsyncClient, shop: Shop, phones: list[str], history: list[Any]
) -> None:
    receipts: list[str] = []
    for move in history:
        kind = move[0]
        if kind == "buy":
            _, who, day, yuan = move
            body = {
                "receipt_id": unique_code("R"),
                "member_phone": phones[who],
                "purchased_at": f"{START + timedelta(days=day)}T10:00:00+08:00",
                "lines": [
                    {"sku": FORMULA_1, "quantity": 1, "amount": f"{yuan}.00"},
                    {"sku": PROBIOTIC, "quantity": 2, "amount": "100.00"},
                ],
            }
            r = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
            assert r.status_code == 201, r.text
            receipts.append(body["receipt_id"])
        elif kind == "redeem":
            _, who, points = move
            r = await client.post(
                "/pos/v1/redemptions",
                json={
                    "redemption_id": unique_code("RD"),
                    "member_phone": phones[who],
                    "points": points,
                    "redeemed_at": "2026-11-20T11:00:00+08:00",
                },
                headers=shop.pos,
            )
            assert r.status_code in (201, 409, 422), r.text
        elif kind == "return" and receipts:
            _, which, whole = move
            body = {
                "return_id": unique_code("RT"),
                "receipt_id": receipts[which % len(receipts)],
                "returned_at": "2026-11-20T11:30:00+08:00",
            }
            if not whole:
                body["lines"] = [{"sku": PROBIOTIC, "quantity": 1, "amount": "50.00"}]
            r = await client.post("/pos/v1/returns", json=body, headers=shop.pos)
            assert r.status_code in (201, 422), r.text
        elif kind == "expire":
            day = START + timedelta(days=move[1])
            await expire_them(phones, day)
            before = await books(phones, shop.code)
            assert await expire_them(phones, day) == 0  # a rerun changes nothing
            assert await books(phones, shop.code) == before
        check(await books(phones, shop.code))


async def expire_them(phones: list[str], day: date) -> int:
    cond, args = in_list(phones, "text")
    where = f" AND l.member IN (SELECT id FROM member WHERE phone {cond})"
    return await in_write_transaction(lambda: expire(day, where, args))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(step, min_size=4, max_size=16))
async def test_the_points_books_always_balance(
    client: httpx.AsyncClient,
    hq: dict[str, str],
    products: None,
    short_lived_points: None,
    history: list[Any],
) -> None:
    shop = await make_shop()
    phones = [unique_phone() for _ in range(4)]
    promotion = {
        "promotion_id": unique_code("P"),
        "name": "双倍",
        "starts_on": "2026-09-01",
        "ends_on": "2026-10-15",
        "multiplier": 2,
        "skus": [PROBIOTIC],
        "store_codes": [shop.code],
    }
    assert (
        await client.post("/hq/v1/points-promotions", json=promotion, headers=hq)
    ).status_code == 201
    await play(client, shop, phones, history)
