"""The till's contract over HTTP: members, receipts, batches, redemptions."""

from __future__ import annotations

import asyncio
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
PROBLEM = "application/problem+json"


def field_names(response: Any) -> set[str]:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return {e["field"] for e in response.json().get("errors", [])}


# --- members ---------------------------------------------------------------


async def test_registering_a_known_phone_returns_the_existing_member(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    first = await client.post(
        "/pos/v1/members",
        json={
            "phone": phone,
            "name": "王女士",
            "advisor_code": shop.advisors[0],
            "babies": [{"name": "乐乐", "birth_date": "2026-03-02"}],
        },
        headers=shop.pos,
    )
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True

    spaced = f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"
    again = await client.post(
        "/pos/v1/members", json={"phone": spaced, "name": "别名"}, headers=shop.pos
    )
    assert again.status_code == 200
    assert again.json() == {"member_id": first.json()["member_id"], "created": False}

    rows = await fetch("SELECT name, recruited_by FROM member WHERE phone = {}", phone)
    assert len(rows) == 1 and rows[0]["name"] == "王女士"


@pytest.mark.parametrize(
    "form", ["+86 138-0013-8000", "8613800138000", "13800138000", "138 0013 8000"]
)
async def test_phone_forms_normalise_to_eleven_digits(
    client: Client, shop: Shop, form: str
) -> None:
    r = await client.post("/pos/v1/members", json={"phone": form}, headers=shop.pos)
    assert r.status_code in (200, 201)
    rows = await fetch("SELECT phone FROM member WHERE id = {}", r.json()["member_id"])
    assert rows[0]["phone"] == "13800138000"


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        # Not the shape of a phone (the schema's 400), or the shape but no mainland
        # mobile (the rules' 422): either way the field is named.
        ("12345", 400),
        ("phone", 400),
        ("23800138000", 422),
        ("138001380001", 422),
        ("+1 415 555 0100", 422),
    ],
)
async def test_a_phone_that_is_not_a_mainland_mobile_is_a_field_error(
    client: Client, shop: Shop, bad: str, status: int
) -> None:
    r = await client.post("/pos/v1/members", json={"phone": bad}, headers=shop.pos)
    assert r.status_code == status
    assert field_names(r) == {"phone"}


async def test_member_lookup_shows_babies_age_and_stage(client: Client, shop: Shop) -> None:
    phone = unique_phone()
    await client.post(
        "/pos/v1/members",
        json={
            "phone": phone,
            "name": "李女士",
            "advisor_code": shop.advisors[1],
            "babies": [{"name": "大宝", "birth_date": "2025-05-19"}, {"due_date": "2027-02-01"}],
        },
        headers=shop.pos,
    )
    r = await client.get(f"/pos/v1/members/{phone}", headers=shop.pos)
    assert r.status_code == 200
    body = r.json()
    assert body["home_store"] == shop.code and body["owning_advisor"] == shop.advisors[1]
    assert body["points_balance"] == 0
    born, expected = body["babies"]
    # 2025-05-19 to the suite's today 2026-11-20: 18 whole months, stage 3.
    assert (born["age_months"], born["stage"]) == (18, 3)
    assert (expected["age_months"], expected["stage"], expected["due_date"]) == (
        None,
        None,
        "2027-02-01",
    )

    missing = await client.get(f"/pos/v1/members/{unique_phone()}", headers=shop.pos)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


async def test_registration_refuses_another_stores_advisor_and_dateless_babies(
    client: Client, shop: Shop
) -> None:
    other = await make_shop()
    r = await client.post(
        "/pos/v1/members",
        json={"phone": unique_phone(), "advisor_code": other.advisors[0]},
        headers=shop.pos,
    )
    assert r.status_code == 422 and field_names(r) == {"advisor_code"}
    r = await client.post(
        "/pos/v1/members",
        json={"phone": unique_phone(), "babies": [{"name": "x"}]},
        headers=shop.pos,
    )
    assert r.status_code == 422 and field_names(r) == {"babies[0]"}


# --- purchases -------------------------------------------------------------


async def test_a_purchase_by_an_unknown_phone_registers_the_member_at_the_keys_store(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/purchases",
        json=receipt(phone=phone, advisor_code=shop.advisors[1]),
        headers=shop.pos,
    )
    assert r.status_code == 201, r.text
    member = (await client.get(f"/pos/v1/members/{phone}", headers=shop.pos)).json()
    assert member["home_store"] == shop.code
    assert member["owning_advisor"] == shop.advisors[1]
    rows = await fetch(
        "SELECT a.code FROM member m JOIN advisor a ON a.id = m.recruited_by WHERE m.phone = {}",
        phone,
    )
    assert rows[0]["code"] == shop.advisors[1]


async def test_points_are_one_per_whole_yuan_of_eligible_spend(client: Client, shop: Shop) -> None:
    phone = unique_phone()
    body = receipt(
        phone=phone, lines=[(FORMULA_1, 1, "259.50"), (PROBIOTIC, 2, "100.99"), (WIPES, 3, "59.90")]
    )
    r = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
    assert r.status_code == 201
    # 259.50 + 100.99 = 360.49 eligible -> 360 points; the wipes earn nothing.
    assert r.json()["points_earned"] == 360
    assert r.json()["points_balance"] == 360
    assert await ledger_of(phone) == (360, 360, 1)
    rows = await fetch(
        "SELECT total_fen, eligible_fen FROM purchase WHERE receipt_id = {}", body["receipt_id"]
    )
    assert (rows[0]["total_fen"], rows[0]["eligible_fen"]) == (42039, 36049)


async def test_a_replayed_receipt_returns_the_first_answer_and_a_changed_one_conflicts(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    body = receipt(phone=phone)
    first = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
    await client.post(
        "/pos/v1/purchases", json=receipt(phone=phone), headers=shop.pos
    )  # balance moves on
    replay = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
    assert first.status_code == 201 and replay.status_code == 200
    assert replay.json() == first.json()

    changed = dict(body, lines=[{"sku": FORMULA_1, "quantity": 2, "amount": "716.00"}])
    conflict = await client.post("/pos/v1/purchases", json=changed, headers=shop.pos)
    assert conflict.status_code == 409 and field_names(conflict) == {"receipt_id"}
    assert await ledger_of(phone) == (716, 716, 2)


async def test_the_same_receipt_id_at_another_store_is_another_receipt(
    client: Client, shop: Shop
) -> None:
    other = await make_shop()
    body = receipt()
    assert (await client.post("/pos/v1/purchases", json=body, headers=shop.pos)).status_code == 201
    assert (await client.post("/pos/v1/purchases", json=body, headers=other.pos)).status_code == 201


async def test_twenty_identical_receipts_at_once_make_one_purchase(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    body = receipt(phone=phone, lines=[(FORMULA_2, 2, "676.00")], advisor_code=shop.advisors[0])
    answers = await asyncio.gather(
        *[client.post("/pos/v1/purchases", json=body, headers=shop.pos) for _ in range(20)]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 19 + [201], [a.text for a in answers if a.status_code not in (200, 201)]
    assert len({a.json()["purchase_id"] for a in answers}) == 1
    assert all(a.json()["points_earned"] == 676 for a in answers)
    assert await ledger_of(phone) == (676, 676, 1)
    members = await fetch("SELECT COUNT(*) AS n FROM member WHERE phone = {}", phone)
    purchases = await fetch(
        "SELECT COUNT(*) AS n FROM purchase WHERE receipt_id = {}", body["receipt_id"]
    )
    assert members[0]["n"] == 1 and purchases[0]["n"] == 1


async def test_a_time_without_offset_is_read_in_the_stores_zone(client: Client, shop: Shop) -> None:
    late = receipt(purchased_at="2026-11-19T23:30:00")
    utc = receipt(purchased_at="2026-11-19T15:30:00Z")  # also 23:30 in Shanghai
    for body in (late, utc):
        assert (
            await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
        ).status_code == 201
    rows = await fetch(
        "SELECT receipt_id, purchased_on FROM purchase WHERE receipt_id IN ({}, {})",
        late["receipt_id"],
        utc["receipt_id"],
    )
    assert {str(r["purchased_on"]) for r in rows} == {"2026-11-19"}


async def test_a_store_day_follows_the_stores_own_zone(client: Client, products: None) -> None:
    urumqi = await make_shop(timezone="Asia/Urumqi")  # UTC+6
    body = receipt(
        purchased_at="2026-11-19T17:30:00Z"
    )  # 23:30 in Urumqi, 01:30 on the 20th in Shanghai
    assert (
        await client.post("/pos/v1/purchases", json=body, headers=urumqi.pos)
    ).status_code == 201
    rows = await fetch(
        "SELECT purchased_on FROM purchase WHERE receipt_id = {}", body["receipt_id"]
    )
    assert str(rows[0]["purchased_on"]) == "2026-11-19"


async def test_a_purchase_from_the_future_is_refused(client: Client, shop: Shop) -> None:
    # The suite's clock is 2026-11-20 12:00 Shanghai; a till may run up to 5 minutes fast.
    ok = await client.post(
        "/pos/v1/purchases",
        json=receipt(purchased_at="2026-11-20T12:04:00+08:00"),
        headers=shop.pos,
    )
    assert ok.status_code == 201
    late = await client.post(
        "/pos/v1/purchases",
        json=receipt(purchased_at="2026-11-20T12:06:00+08:00"),
        headers=shop.pos,
    )
    assert late.status_code == 422 and field_names(late) == {"purchased_at"}


@pytest.mark.parametrize(
    ("line", "field", "status"),
    [
        # Not the shape of an amount: the schema's 400.
        ((FORMULA_1, 1, "-1.00"), "lines[0].amount", 400),
        ((FORMULA_1, 1, "1.005"), "lines[0].amount", 400),
        ((FORMULA_1, 1, "NaN"), "lines[0].amount", 400),
        ((FORMULA_1, 1, ""), "lines[0].amount", 400),
        # The shape of one, but over what one line may be: the rules' 422.
        ((FORMULA_1, 1, "1000000.01"), "lines[0].amount", 422),
        (("NO-SUCH-SKU", 1, "1.00"), "lines[0].sku", 422),
    ],
)
async def test_bad_lines_are_refused_naming_the_field(
    client: Client, shop: Shop, line: tuple[str, int, str], field: str, status: int
) -> None:
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/purchases", json=receipt(phone=phone, lines=[line]), headers=shop.pos
    )
    assert r.status_code == status and field_names(r) == {field}
    assert not await fetch("SELECT id FROM member WHERE phone = {}", phone)


async def test_a_negative_quantity_is_refused_naming_the_field(client: Client, shop: Shop) -> None:
    r = await client.post(
        "/pos/v1/purchases", json=receipt(lines=[(FORMULA_1, -2, "1.00")]), headers=shop.pos
    )
    assert r.status_code == 400 and field_names(r) == {"lines[0].quantity"}


async def test_a_receipt_naming_another_stores_advisor_is_refused(
    client: Client, shop: Shop
) -> None:
    other = await make_shop()
    r = await client.post(
        "/pos/v1/purchases", json=receipt(advisor_code=other.advisors[0]), headers=shop.pos
    )
    assert r.status_code == 422 and field_names(r) == {"advisor_code"}


async def test_a_receipt_without_advisor_credits_the_owning_advisor(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    await client.post(
        "/pos/v1/members", json={"phone": phone, "advisor_code": shop.advisors[1]}, headers=shop.pos
    )
    body = receipt(phone=phone)
    await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
    rows = await fetch(
        "SELECT a.code FROM purchase p JOIN advisor a ON a.id = p.advisor WHERE p.receipt_id = {}",
        body["receipt_id"],
    )
    assert rows[0]["code"] == shop.advisors[1]


# --- batches ---------------------------------------------------------------


async def test_a_batch_answers_each_receipt_and_bad_ones_do_not_sink_the_rest(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    good = [receipt(phone=phone, lines=[(FORMULA_1, 1, "100.00")]) for _ in range(3)]
    unknown_sku = receipt(lines=[("NO-SUCH-SKU", 1, "1.00")])
    negative_qty = receipt(lines=[(FORMULA_1, -1, "1.00")])
    negative_amount = receipt(lines=[(FORMULA_1, 1, "-1.00")])
    bad_phone = receipt(phone="12345")
    missing = {
        "receipt_id": "no-lines",
        "member_phone": unique_phone(),
        "purchased_at": "2026-11-20T10:00:00",
    }
    batch = [
        good[0],
        unknown_sku,
        good[1],
        negative_qty,
        negative_amount,
        bad_phone,
        missing,
        good[2],
    ]
    r = await client.post("/pos/v1/purchases/batch", json={"purchases": batch}, headers=shop.pos)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["receipt_id"] for x in results] == [b["receipt_id"] for b in batch]
    assert [x["status"] for x in results] == [
        "created",
        "rejected",
        "created",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "created",
    ]
    assert [x["errors"][0]["field"] for x in results if x["status"] == "rejected"] == [
        "lines[0].sku",
        "lines[0].quantity",
        "lines[0].amount",
        "member_phone",
        "lines",
    ]
    assert [x["points_balance"] for x in results if x["status"] == "created"] == [100, 200, 300]
    assert await ledger_of(phone) == (300, 300, 3)

    again = await client.post("/pos/v1/purchases/batch", json={"purchases": good}, headers=shop.pos)
    assert [x["status"] for x in again.json()["results"]] == ["duplicate"] * 3
    assert [x["points_balance"] for x in again.json()["results"]] == [100, 200, 300]
    assert await ledger_of(phone) == (300, 300, 3)


async def test_a_receipt_repeated_inside_one_batch_counts_once(client: Client, shop: Shop) -> None:
    phone = unique_phone()
    body = receipt(phone=phone)
    changed = dict(body, lines=[{"sku": FORMULA_1, "quantity": 3, "amount": "1.00"}])
    r = await client.post(
        "/pos/v1/purchases/batch", json={"purchases": [body, body, changed]}, headers=shop.pos
    )
    assert [x["status"] for x in r.json()["results"]] == ["created", "duplicate", "rejected"]
    assert await ledger_of(phone) == (358, 358, 1)


async def test_a_batch_over_500_receipts_is_refused_whole(client: Client, shop: Shop) -> None:
    r = await client.post(
        "/pos/v1/purchases/batch",
        json={"purchases": [receipt() for _ in range(501)]},
        headers=shop.pos,
    )
    assert r.status_code == 400 and field_names(r) == {"purchases"}


async def test_a_full_batch_of_500_lands(client: Client, shop: Shop) -> None:
    phones = [unique_phone() for _ in range(100)]
    batch = [
        receipt(phone=phones[i % 100], lines=[(FORMULA_1, 1, "10.00"), (WIPES, 1, "5.00")])
        for i in range(500)
    ]
    r = await client.post("/pos/v1/purchases/batch", json={"purchases": batch}, headers=shop.pos)
    assert {x["status"] for x in r.json()["results"]} == {"created"}
    for phone in phones[:5]:
        assert await ledger_of(phone) == (50, 50, 5)
    lines = await fetch(
        "SELECT COUNT(*) AS n FROM purchase_line l JOIN purchase p ON p.id = l.purchase"
        " JOIN store s ON s.id = p.store WHERE s.code = {}",
        shop.code,
    )
    assert lines[0]["n"] == 1000


# --- redemptions -----------------------------------------------------------


async def funded_member(client: Client, shop: Shop, yuan: str = "100.00") -> str:
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/purchases",
        json=receipt(phone=phone, lines=[(FORMULA_1, 1, yuan)]),
        headers=shop.pos,
    )
    assert r.status_code == 201
    return phone


def redemption(phone: str, points: int, redemption_id: str | None = None) -> dict[str, Any]:
    return {
        "redemption_id": redemption_id or unique_code("X"),
        "member_phone": phone,
        "points": points,
        "redeemed_at": "2026-11-20T11:00:00+08:00",
    }


async def test_redeeming_lowers_the_balance_and_a_replay_returns_the_first_answer(
    client: Client, shop: Shop
) -> None:
    phone = await funded_member(client, shop)
    body = redemption(phone, 30)
    first = await client.post("/pos/v1/redemptions", json=body, headers=shop.pos)
    assert first.status_code == 201 and first.json()["points_balance"] == 70
    replay = await client.post("/pos/v1/redemptions", json=body, headers=shop.pos)
    assert replay.status_code == 200 and replay.json() == first.json()
    changed = await client.post("/pos/v1/redemptions", json=dict(body, points=31), headers=shop.pos)
    assert changed.status_code == 409 and field_names(changed) == {"redemption_id"}
    assert await ledger_of(phone) == (70, 70, 2)


async def test_an_overdraw_is_a_conflict_and_writes_nothing(client: Client, shop: Shop) -> None:
    phone = await funded_member(client, shop)
    body = redemption(phone, 101)
    r = await client.post("/pos/v1/redemptions", json=body, headers=shop.pos)
    assert r.status_code == 409 and field_names(r) == {"points"}
    assert "100" in r.json()["detail"]
    assert await ledger_of(phone) == (100, 100, 1)
    # Nothing was kept under that id: the till may retry it with a smaller amount.
    retry = await client.post("/pos/v1/redemptions", json=dict(body, points=100), headers=shop.pos)
    assert retry.status_code == 201 and retry.json()["points_balance"] == 0
    assert await ledger_of(phone) == (0, 0, 2)


async def test_concurrent_redemptions_never_take_the_balance_below_zero(
    client: Client, shop: Shop
) -> None:
    phone = await funded_member(client, shop)
    answers = await asyncio.gather(
        *[
            client.post("/pos/v1/redemptions", json=redemption(phone, 40), headers=shop.pos)
            for _ in range(5)
        ]
    )
    assert sorted(a.status_code for a in answers) == [201, 201, 409, 409, 409]
    assert await ledger_of(phone) == (20, 20, 3)


async def test_redeeming_for_an_unknown_member_names_the_field(client: Client, shop: Shop) -> None:
    r = await client.post(
        "/pos/v1/redemptions", json=redemption(unique_phone(), 1), headers=shop.pos
    )
    assert r.status_code == 422 and field_names(r) == {"member_phone"}
