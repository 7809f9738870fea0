"""Sign-in, roles, POS keys, the registry, health and the published contract."""

from __future__ import annotations

import httpx
import pytest

from members import accounts
from tests.conftest import PASSWORD, Shop, login, make_shop, receipt, unique_code, unique_phone

PROBLEM = "application/problem+json"


async def test_health_reports_the_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "scheduler": "off"}


async def test_the_contracts_paths_are_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    for path in [
        "/pos/v1/members",
        "/pos/v1/members/{phone}",
        "/pos/v1/purchases",
        "/pos/v1/purchases/batch",
        "/pos/v1/redemptions",
        "/hq/v1/stores/{code}",
        "/hq/v1/advisors/{code}",
        "/hq/v1/products/{sku}",
        "/auth/login",
        "/health",
        "/advisor/v1/me/score",
        "/advisor/v1/devices",
        "/advisor/v1/devices/{token}",
        "/v1/leaderboards/advisors",
        "/v1/leaderboards/stores",
        "/v1/contests/{contest_id}/standings",
        "/hq/v1/contests",
        "/hq/v1/periods/{month}/close",
        "/hq/v1/bonus-statements",
    ]:
        assert path in spec["paths"], path
    assert "PosApiKey" in spec["components"]["securitySchemes"]
    page = await client.get("/schema")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


async def test_login_issues_a_bearer_token_and_refuses_wrong_passwords(
    client: httpx.AsyncClient,
) -> None:
    phone = unique_phone()
    await accounts.create_user("hq", phone, PASSWORD)
    ok = await client.post("/auth/login", json={"phone": f"+86 {phone}", "password": PASSWORD})
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "Bearer" and body["role"] == "hq" and body["expires_in"] == 3600
    for creds in [
        {"phone": phone, "password": "wrong-password"},
        {"phone": unique_phone(), "password": PASSWORD},
        {"phone": "not a phone", "password": PASSWORD},
    ]:
        bad = await client.post("/auth/login", json=creds)
        assert bad.status_code == 401 and bad.headers["content-type"] == PROBLEM


async def test_only_hq_keeps_the_registry(
    client: httpx.AsyncClient, hq: dict[str, str], products: None
) -> None:
    shop = await make_shop()
    advisor_phone = unique_phone()
    await accounts.create_user("advisor", advisor_phone, PASSWORD, advisor_code=shop.advisors[0])
    owner_phone = unique_phone()
    await accounts.create_user("owner", owner_phone, PASSWORD, store_codes=[shop.code])
    body = {"name": "新店", "region": "华东"}
    assert (await client.put("/hq/v1/stores/S9", json=body)).status_code == 401
    for phone in (advisor_phone, owner_phone):
        r = await client.put("/hq/v1/stores/S9", json=body, headers=await login(client, phone))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    garbage = {"Authorization": "Bearer not-a-token"}
    assert (await client.get("/hq/v1/stores", headers=garbage)).status_code == 401
    # A POS key is not a person's credential.
    assert (await client.get("/hq/v1/stores", headers=shop.pos)).status_code == 401


async def test_a_deactivated_advisors_token_stops_working(
    client: httpx.AsyncClient, hq: dict[str, str]
) -> None:
    shop = await make_shop()
    phone = unique_phone()
    await accounts.create_user("advisor", phone, PASSWORD, advisor_code=shop.advisors[0])
    token = await login(client, phone)
    advisor = (await client.get(f"/hq/v1/advisors/{shop.advisors[0]}", headers=hq)).json()
    advisor.pop("code")
    r = await client.put(
        f"/hq/v1/advisors/{shop.advisors[0]}", json={**advisor, "active": False}, headers=hq
    )
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await client.put("/hq/v1/stores/S9", json={}, headers=token)).status_code == 401


async def test_the_till_needs_its_key(client: httpx.AsyncClient, shop: Shop) -> None:
    for headers in [{}, {"X-API-Key": "ttpos_not-a-real-key"}]:
        r = await client.post("/pos/v1/purchases", json=receipt(), headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM


async def test_a_pos_key_writes_only_for_its_own_store(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    other = await make_shop()
    body = receipt()
    r = await client.post("/pos/v1/purchases", json=body, headers=other.pos)
    assert r.status_code == 201
    phone = body["member_phone"]
    member = (await client.get(f"/pos/v1/members/{phone}", headers=shop.pos)).json()
    assert member["home_store"] == other.code
    # The other store's key cannot credit this store's advisor either.
    r = await client.post(
        "/pos/v1/purchases", json=receipt(advisor_code=shop.advisors[0]), headers=other.pos
    )
    assert r.status_code == 422


async def test_hq_registry_upserts_and_validates(
    client: httpx.AsyncClient, hq: dict[str, str]
) -> None:
    code = unique_code("S")
    r = await client.put(
        f"/hq/v1/stores/{code}", json={"name": "深圳福田店", "region": "华南"}, headers=hq
    )
    assert r.status_code == 200
    assert r.json() == {
        "code": code,
        "name": "深圳福田店",
        "region": "华南",
        "timezone": "Asia/Shanghai",
        "latitude": None,
        "longitude": None,
        "o2o": False,
    }
    r = await client.put(
        f"/hq/v1/stores/{code}",
        json={
            "name": "深圳福田旗舰店",
            "region": "华南",
            "timezone": "Asia/Urumqi",
            "latitude": 22.5,
            "longitude": 114.0,
        },
        headers=hq,
    )
    assert r.json()["name"] == "深圳福田旗舰店" and r.json()["timezone"] == "Asia/Urumqi"
    listed = (
        await client.get("/hq/v1/stores", params={"region": "华南", "limit": 500}, headers=hq)
    ).json()
    assert [s["code"] for s in listed].count(code) == 1

    bad_zone = await client.put(
        f"/hq/v1/stores/{code}",
        json={"name": "x", "region": "华南", "timezone": "Mars/Base"},
        headers=hq,
    )
    assert bad_zone.status_code == 422 and bad_zone.json()["errors"][0]["field"] == "timezone"
    missing = await client.put(f"/hq/v1/stores/{code}", json={"region": "华南"}, headers=hq)
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "name"
    bad_path = await client.put(
        "/hq/v1/stores/has space", json={"name": "x", "region": "y"}, headers=hq
    )
    assert bad_path.status_code == 400

    adv = unique_code("A")
    r = await client.put(
        f"/hq/v1/advisors/{adv}",
        json={"name": "陈顾问", "phone": "+86 139-0000-1234", "store_code": code},
        headers=hq,
    )
    assert r.status_code == 200 and r.json() == {
        "code": adv,
        "name": "陈顾问",
        "phone": "13900001234",
        "store_code": code,
        "active": True,
    }
    r = await client.put(
        f"/hq/v1/advisors/{adv}",
        json={"name": "x", "phone": "13900001234", "store_code": "NOPE"},
        headers=hq,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "store_code"
    assert (await client.get("/hq/v1/advisors/NOPE", headers=hq)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "1段奶粉", "category": "formula"}, "stage"),
        ({"name": "湿巾", "category": "care", "stage": 2}, "stage"),
        ({"name": "1段奶粉", "category": "formula", "stage": 5}, "stage"),
        ({"name": "米粉", "category": "cereal", "days_of_supply": 0}, "days_of_supply"),
        ({"name": "米粉", "category": "Cereal!"}, "category"),
    ],
)
async def test_product_rules(
    client: httpx.AsyncClient, hq: dict[str, str], body: dict[str, object], field: str
) -> None:
    r = await client.put(f"/hq/v1/products/{unique_code('P')}", json=body, headers=hq)
    assert r.status_code in (400, 422) and r.json()["errors"][0]["field"] == field


async def test_a_product_can_be_changed_and_read_back(
    client: httpx.AsyncClient, hq: dict[str, str]
) -> None:
    sku = unique_code("P")
    body = {
        "name": "2段奶粉",
        "category": "formula",
        "stage": 2,
        "days_of_supply": 14,
        "points_eligible": True,
    }
    assert (await client.put(f"/hq/v1/products/{sku}", json=body, headers=hq)).status_code == 200
    body["points_eligible"] = False
    assert (await client.put(f"/hq/v1/products/{sku}", json=body, headers=hq)).json()[
        "points_eligible"
    ] is False
    assert (await client.get(f"/hq/v1/products/{sku}", headers=hq)).json() == {"sku": sku, **body}
