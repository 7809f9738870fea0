"""Points as money over HTTP: the policy, promotions, redemptions with their value,
returns, and the oldest lots taken first. Promotions in these tests name the test's
own store, so that no other test's receipts earn them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core.db import fetch
from tests.conftest import (
    FORMULA_1,
    FORMULA_2,
    PROBIOTIC,
    WIPES,
    Shop,
    ledger_of,
    make_shop,
    receipt,
    unique_code,
    unique_phone,
)

Client = httpx.AsyncClient
DEFAULT_POLICY = {
    "value_per_100_points": "7.00",
    "expiry_months": 24,
    "expiry_warning_days": 30,
    "tiers": [
        {"code": "vip", "name": "VIP", "min_points_in_year": 1500},
        {"code": "gold", "name": "金卡", "min_points_in_year": 8000},
    ],
}


@pytest.fixture
async def policy_restored(client: Client, hq: dict[str, str]) -> AsyncIterator[None]:
    yield
    r = await client.put("/hq/v1/points-policy", json=DEFAULT_POLICY, headers=hq)
    assert r.status_code == 200, r.text


async def bought(
    client: Client, shop: Shop, phone: str, when: str, lines: list[tuple[str, int, str]]
) -> dict[str, Any]:
    body = receipt(phone=phone, purchased_at=when, lines=lines, advisor_code=shop.advisors[0])
    r = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
    assert r.status_code == 201, r.text
    return {**r.json(), "receipt_id": body["receipt_id"]}


async def redeem(
    client: Client, shop: Shop, phone: str, points: int, **extra: Any
) -> httpx.Response:
    body = {
        "redemption_id": unique_code("RD"),
        "member_phone": phone,
        "points": points,
        "redeemed_at": "2026-11-19T15:00:00+08:00",
        **extra,
    }
    return await client.post("/pos/v1/redemptions", json=body, headers=shop.pos)


async def till(client: Client, shop: Shop, phone: str) -> dict[str, Any]:
    r = await client.get(f"/pos/v1/members/{phone}", headers=shop.pos)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def promote(client: Client, hq: dict[str, str], **fields: Any) -> httpx.Response:
    body = {
        "promotion_id": unique_code("P"),
        "name": "双倍积分日",
        "starts_on": "2026-11-01",
        "ends_on": "2026-11-30",
        "multiplier": 2,
        **fields,
    }
    return await client.post("/hq/v1/points-promotions", json=body, headers=hq)


# --- the policy ------------------------------------------------------------------


async def test_the_policy_has_defaults_and_a_change_applies_to_the_next_redemption(
    client: Client, hq: dict[str, str], shop: Shop, policy_restored: None
) -> None:
    assert (await client.get("/hq/v1/points-policy", headers=hq)).json() == DEFAULT_POLICY
    phone = unique_phone()
    await bought(client, shop, phone, "2026-11-18T10:00:00+08:00", [(FORMULA_1, 2, "716.00")])
    before = await redeem(client, shop, phone, 100)
    assert before.status_code == 201 and before.json()["value"] == "7.00"

    cheaper = {**DEFAULT_POLICY, "value_per_100_points": "5.50"}
    assert (await client.put("/hq/v1/points-policy", json=cheaper, headers=hq)).json() == cheaper
    after = await redeem(client, shop, phone, 150)
    # 150 points at 5.50 per 100: 8.25 yuan. The first redemption keeps its 7.00.
    assert after.json()["value"] == "8.25"
    replayed = await client.post(
        "/pos/v1/redemptions",
        json={
            "redemption_id": _id(before),
            "member_phone": phone,
            "points": 100,
            "redeemed_at": "2026-11-19T15:00:00+08:00",
        },
        headers=shop.pos,
    )
    assert replayed.status_code == 200 and replayed.json()["value"] == "7.00"


def _id(response: httpx.Response) -> str:
    return str(response.json()["redemption_id"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tiers": [{"code": "vip", "name": "A", "min_points_in_year": 10}] * 2}, "tiers"),
        ({"value_per_100_points": "7.001"}, "value_per_100_points"),
        ({"expiry_months": 0}, "expiry_months"),
    ],
)
async def test_a_bad_policy_is_refused_naming_the_field(
    client: Client, hq: dict[str, str], change: dict[str, Any], field: str
) -> None:
    r = await client.put("/hq/v1/points-policy", json={**DEFAULT_POLICY, **change}, headers=hq)
    assert r.status_code in (400, 422), r.text
    assert field in {e["field"].split("[")[0].split(".")[0] for e in r.json()["errors"]}
    assert (await client.get("/hq/v1/points-policy", headers=hq)).json() == DEFAULT_POLICY


# --- promotions ------------------------------------------------------------------


async def test_the_best_promotion_applies_never_stacked_and_the_ledger_names_it(
    client: Client, hq: dict[str, str], shop: Shop
) -> None:
    double = await promote(client, hq, skus=[FORMULA_2], store_codes=[shop.code])
    triple = await promote(
        client, hq, multiplier=3, categories=["formula"], store_codes=[shop.code]
    )
    assert double.status_code == 201 and triple.status_code == 201, triple.text
    phone = unique_phone()
    got = await bought(
        client,
        shop,
        phone,
        "2026-11-18T10:00:00+08:00",
        [(FORMULA_2, 1, "338.00"), (PROBIOTIC, 1, "198.00"), (WIPES, 1, "59.90")],
    )
    # Base: 338 + 198 = 536 eligible yuan (wipes earn nothing). The formula line
    # matches both: 3× wins, so 338 × 2 extra; the probiotic matches neither.
    assert got["points_earned"] == 536 + 676
    ledger = await fetch(
        "SELECT l.points, l.bonus_points, pr.promotion_id FROM points_ledger l"
        " JOIN purchase p ON p.id = l.purchase JOIN points_promotion pr ON pr.id = l.promotion"
        " WHERE p.id = {}",
        got["purchase_id"],
    )
    assert ledger == [
        {"points": 1212, "bonus_points": 676, "promotion_id": triple.json()["promotion_id"]}
    ]
    # Outside the window (and at another store) nothing extra.
    other = await make_shop()
    plain = await bought(
        client, other, phone, "2026-11-18T11:00:00+08:00", [(FORMULA_2, 1, "338.00")]
    )
    assert plain["points_earned"] == 338
    late = await bought(
        client, shop, phone, "2026-10-30T11:00:00+08:00", [(FORMULA_2, 1, "338.00")]
    )
    assert late["points_earned"] == 338


async def test_a_tier_promotion_reaches_only_members_of_that_tier(
    client: Client, hq: dict[str, str], shop: Shop
) -> None:
    gold_only = await promote(client, hq, multiplier=5, tiers=["gold"], store_codes=[shop.code])
    assert gold_only.status_code == 201
    phone = unique_phone()
    first = await bought(
        client, shop, phone, "2026-11-10T10:00:00+08:00", [(FORMULA_1, 25, "8950.00")]
    )
    assert first["points_earned"] == 8950  # not gold when it bought
    assert (await till(client, shop, phone))["tier"] == "gold"
    second = await bought(
        client, shop, phone, "2026-11-11T10:00:00+08:00", [(FORMULA_1, 1, "358.00")]
    )
    assert second["points_earned"] == 358 * 5


async def test_a_promotion_is_idempotent_by_its_id(
    client: Client, hq: dict[str, str], shop: Shop
) -> None:
    body = {
        "promotion_id": unique_code("P"),
        "name": "周末双倍",
        "starts_on": "2026-12-05",
        "ends_on": "2026-12-06",
        "multiplier": 2,
        "store_codes": [shop.code],
    }
    first = await client.post("/hq/v1/points-promotions", json=body, headers=hq)
    again = await client.post("/hq/v1/points-promotions", json=body, headers=hq)
    other = await client.post(
        "/hq/v1/points-promotions", json={**body, "multiplier": 3}, headers=hq
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    listed = (await client.get("/hq/v1/points-promotions", headers=hq)).json()
    assert body["promotion_id"] in {p["promotion_id"] for p in listed}
    backwards = await promote(client, hq, starts_on="2026-12-09", ends_on="2026-12-01")
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "ends_on"
    nowhere = await promote(client, hq, store_codes=["NOPE404"])
    assert nowhere.status_code == 422 and nowhere.json()["errors"][0]["field"] == "store_codes"


# --- redemptions -------------------------------------------------------------------


async def test_a_redemption_takes_the_oldest_lots_first_and_records_the_goods(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    await bought(client, shop, phone, "2026-09-10T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    await bought(client, shop, phone, "2026-11-18T10:00:00+08:00", [(FORMULA_2, 1, "338.00")])
    assert [
        (e["points"], e["expires_on"]) for e in (await till(client, shop, phone))["points_expiring"]
    ] == [
        (358, "2028-09-30"),
        (338, "2028-11-30"),
    ]
    r = await redeem(client, shop, phone, 500, lines=[{"sku": PROBIOTIC, "quantity": 1}])
    assert r.status_code == 201, r.text
    assert r.json() == {
        "redemption_id": r.json()["redemption_id"],
        "points": 500,
        "points_balance": 196,
        "value": "35.00",
    }
    # September's lot is spent first, whole; November's gives the other 142.
    member = await till(client, shop, phone)
    assert member["points_balance"] == 196
    assert [(e["points"], e["expires_on"]) for e in member["points_expiring"]] == [
        (196, "2028-11-30")
    ]
    balance, total, _ = await ledger_of(phone)
    assert balance == total == 196
    unknown = await redeem(client, shop, phone, 1, lines=[{"sku": "NO-SUCH", "quantity": 1}])
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "lines[0].sku"
    too_many = await redeem(client, shop, phone, 197)
    assert too_many.status_code == 409
    assert (await ledger_of(phone))[0] == 196


# --- returns ----------------------------------------------------------------------


async def give_back(
    client: Client,
    shop: Shop,
    receipt_id: str,
    lines: list[dict[str, Any]] | None = None,
    return_id: str | None = None,
    at: str = "2026-11-20T11:30:00+08:00",
) -> httpx.Response:
    body: dict[str, Any] = {
        "return_id": return_id or unique_code("RT"),
        "receipt_id": receipt_id,
        "returned_at": at,
    }
    if lines is not None:
        body["lines"] = lines
    return await client.post("/pos/v1/returns", json=body, headers=shop.pos)


async def test_a_partial_then_a_whole_return_take_back_exactly_the_receipts_points(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    got = await bought(
        client,
        shop,
        phone,
        "2026-11-18T10:00:00+08:00",
        [(FORMULA_1, 2, "716.00"), (PROBIOTIC, 1, "198.00")],
    )
    assert got["points_earned"] == 914
    half = await give_back(
        client, shop, got["receipt_id"], [{"sku": FORMULA_1, "quantity": 1, "amount": "358.00"}]
    )
    assert half.status_code == 201, half.text
    # 914 points × 358 / 914 eligible yuan brought back.
    assert half.json() == {
        "return_id": half.json()["return_id"],
        "points_reversed": 358,
        "points_balance": 556,
        "shortfall": 0,
    }
    again = await give_back(
        client,
        shop,
        got["receipt_id"],
        [{"sku": FORMULA_1, "quantity": 1, "amount": "358.00"}],
        return_id=half.json()["return_id"],
    )
    assert again.status_code == 200 and again.json() == half.json()
    too_many = await give_back(
        client, shop, got["receipt_id"], [{"sku": FORMULA_1, "quantity": 2, "amount": "716.00"}]
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "lines[0].quantity"
    rest = await give_back(client, shop, got["receipt_id"])
    assert rest.json()["points_reversed"] == 556 and rest.json()["points_balance"] == 0
    nothing_left = await give_back(
        client, shop, got["receipt_id"], [{"sku": PROBIOTIC, "quantity": 1, "amount": "1.00"}]
    )
    assert nothing_left.status_code == 422
    reused = await give_back(client, shop, got["receipt_id"], return_id=half.json()["return_id"])
    assert reused.status_code == 409
    assert await ledger_of(phone) == (0, 0, 3)


async def test_points_already_spent_are_a_shortfall_never_a_negative_balance(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    got = await bought(client, shop, phone, "2026-11-18T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    assert (await redeem(client, shop, phone, 300)).status_code == 201
    r = await give_back(client, shop, got["receipt_id"])
    assert r.json()["points_reversed"] == 58 and r.json()["shortfall"] == 300
    assert r.json()["points_balance"] == 0
    assert (await ledger_of(phone))[:2] == (0, 0)


async def test_a_return_names_the_receipt_of_its_own_store(client: Client, shop: Shop) -> None:
    phone = unique_phone()
    got = await bought(client, shop, phone, "2026-11-18T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    elsewhere = await make_shop()
    r = await give_back(client, elsewhere, got["receipt_id"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "receipt_id"
    before = await client.post(
        "/pos/v1/returns",
        json={
            "return_id": unique_code("RT"),
            "receipt_id": got["receipt_id"],
            "returned_at": "2026-11-17T16:00:00+08:00",
        },
        headers=shop.pos,
    )
    assert before.status_code == 422 and before.json()["errors"][0]["field"] == "returned_at"
    not_on_it = await give_back(
        client, shop, got["receipt_id"], [{"sku": FORMULA_2, "quantity": 1, "amount": "1.00"}]
    )
    assert not_on_it.status_code == 422
    assert not_on_it.json()["errors"][0]["field"] == "lines[0].sku"
    no_amount = await give_back(
        client, shop, got["receipt_id"], [{"sku": FORMULA_1, "quantity": 1}]
    )
    assert no_amount.status_code == 422
    assert no_amount.json()["errors"][0]["field"] == "lines[0].amount"
