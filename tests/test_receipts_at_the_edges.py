"""Receipts and requests at the edges: full-width digits, two purchases a day, late
receipts, a year's stock-up, a receipt worth too many points, numbers out of range."""

from __future__ import annotations

import httpx

from core.db import fetch
from members import registry
from members.schemas import ProductIn
from tests.conftest import FORMULA_1, Shop, receipt, unique_code, unique_phone
from tests.test_tasks import advisor_login, buy, join, task_statuses


async def test_full_width_digits_are_the_same_phone(client: httpx.AsyncClient, shop: Shop) -> None:
    phone = unique_phone()
    wide = phone.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    first = await client.post("/pos/v1/members", json={"phone": phone}, headers=shop.pos)
    again = await client.post("/pos/v1/members", json={"phone": wide}, headers=shop.pos)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["member_id"] == first.json()["member_id"]


async def test_a_second_purchase_the_same_day_moves_the_run_out(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-11-20T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    await buy(client, shop, phone, "2026-11-20T11:00:00+08:00", [(FORMULA_1, 2, "716.00")])
    replenish = {k: v for k, v in (await task_statuses(phone)).items() if k.startswith("replenish")}
    # Three tins of 12 days from 11-20: out on 12-26, due on 12-23; the first is superseded.
    assert replenish == {
        "replenish@2026-11-29": ("cancelled", "superseded"),
        "replenish@2026-12-23": ("open", None),
    }


async def test_a_late_receipt_makes_no_task_that_has_already_lapsed(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, phone, "2026-11-13T10:00:00+08:00")  # followup would expire 11-19
    assert not [k for k in await task_statuses(phone) if k.startswith("followup_3d")]


async def test_a_years_stock_up_is_recorded_without_a_replenish(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    sku = unique_code("P")
    await registry.put_product(sku, ProductIn("长效益生菌", "probiotic", days_of_supply=366))
    good, big = receipt(), receipt(lines=[(sku, 10_000, "1.00")])
    r = await client.post(
        "/pos/v1/purchases/batch", json={"purchases": [good, big]}, headers=shop.pos
    )
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == ["created", "created"]
    assert not [k for k in await task_statuses(big["member_phone"]) if k.startswith("replenish")]


async def test_a_receipt_worth_too_many_points_is_refused_alone(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    huge = receipt(lines=[(FORMULA_1, 1, "1000000.00")] * 11)
    r = await client.post(
        "/pos/v1/purchases/batch", json={"purchases": [receipt(), huge]}, headers=shop.pos
    )
    assert [x["status"] for x in r.json()["results"]] == ["created", "rejected"]


async def test_out_of_range_numbers_in_urls_are_client_errors(
    client: httpx.AsyncClient, shop: Shop, hq: dict[str, str]
) -> None:
    who = await advisor_login(client, shop.advisors[0])
    for url, headers in [
        ("/advisor/v1/today?date=9999-12-31", who),
        ("/advisor/v1/today?date=0001-01-01", who),
        (f"/advisor/v1/members/{10**20}", who),
        (f"/advisor/v1/tasks?since={10**20}.1", who),
        (f"/hq/v1/stores?offset={10**25}", hq),
        (f"/hq/v1/products?offset={2**63}", hq),
    ]:
        r = await client.get(url, headers=headers)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    r = await client.post(
        f"/advisor/v1/tasks/{10**20}/snooze", json={"until": "2026-11-21"}, headers=who
    )
    assert 400 <= r.status_code < 500
    rows = await fetch("SELECT 1 AS ok")
    assert rows[0]["ok"] == 1
