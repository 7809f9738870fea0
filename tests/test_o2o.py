"""O2O orders on both databases: routing (home store, nearest with a new member,
unrouted), replays and conflicts, declines and time limits moving an order on in
distance order, concurrent accepts, delivery as the store's purchase, and access."""

from __future__ import annotations

import asyncio
import math
import random
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from core import clock
from core.db import fetch
from members import accounts, registry
from members.schemas import StoreIn
from orders.channels import create_channel_key
from orders.services import Limits, reroute_overdue
from tests.conftest import (
    FORMULA_1,
    PASSWORD,
    TEST_NOW,
    Shop,
    login,
    make_shop,
    unique_code,
    unique_phone,
)

Client = httpx.AsyncClient
PROBLEM = "application/problem+json"
KM_PER_DEGREE = 111.195


@dataclass
class O2oShop:
    shop: Shop
    lat: float
    lon: float
    advisors: list[dict[str, str]]  # each advisor's login headers, in shop.advisors order
    phones: list[str]  # and their login phones (for the pages)


def _area() -> tuple[float, float]:
    """A spot of the map of this test's own: stores of other tests are far away."""
    return 22.0 + random.random() * 18, 100.0 + random.random() * 20


def east_of(lat: float, lon: float, km: float) -> tuple[float, float]:
    return lat, lon + km / (KM_PER_DEGREE * math.cos(math.radians(lat)))


async def o2o_shop(client: Client, lat: float, lon: float, o2o: bool = True) -> O2oShop:
    shop = await make_shop()
    await registry.put_store(
        shop.code,
        StoreIn(name=f"测试店{shop.code}", region="华南", latitude=lat, longitude=lon, o2o=o2o),
    )
    logins, phones = [], []
    for code in shop.advisors:
        phone = unique_phone()
        await accounts.create_user("advisor", phone, PASSWORD, advisor_code=code)
        logins.append(await login(client, phone))
        phones.append(phone)
    return O2oShop(shop, lat, lon, logins, phones)


@pytest.fixture(scope="session")
async def channel(client: Client) -> dict[str, str]:
    return {"X-API-Key": await create_channel_key("小程序")}


def order(
    lat: float,
    lon: float,
    phone: str | None = None,
    order_id: str | None = None,
    amount: str = "358.00",
) -> dict[str, Any]:
    return {
        "order_id": order_id or unique_code("O"),
        "member_phone": phone or unique_phone(),
        "name": "李女士",
        "address": {"text": "幸福路 8 号 3 栋 502", "latitude": lat, "longitude": lon},
        "lines": [{"sku": FORMULA_1, "quantity": 1, "amount": amount}],
        "placed_at": "2026-11-20T11:50:00+08:00",
    }


async def place(client: Client, channel: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/o2o/v1/orders", json=body, headers=channel)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def history(client: Client, channel: dict[str, str], order_id: str) -> dict[str, Any]:
    r = await client.get(f"/o2o/v1/orders/{order_id}", headers=channel)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def delivery_tasks(order_id: str) -> list[dict[str, Any]]:
    return await fetch(
        "SELECT t.status, t.status_reason, t.assignee, t.priority, s.code AS store"
        " FROM task t JOIN store s ON s.id = t.store JOIN o2o_order o"
        " ON t.cause = 'o2o:' || CAST(o.id AS TEXT) WHERE o.order_id = {} ORDER BY t.id",
        order_id,
    )


async def advisor_id(code: str) -> int:
    return int((await fetch("SELECT id FROM advisor WHERE code = {}", code))[0]["id"])


# --- routing ------------------------------------------------------------------------


async def test_the_sqlite_build_has_the_math_functions_routing_needs(client: Client) -> None:
    rows = await fetch("SELECT asin(sqrt(0.25)) AS a, radians(180.0) AS r, power(2.0, 2) AS p")
    assert rows[0]["a"] == pytest.approx(math.pi / 6)
    assert rows[0]["r"] == pytest.approx(math.pi)


async def test_a_member_goes_back_to_their_home_store_even_with_one_nearer(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    home = await o2o_shop(client, *east_of(lat, lon, 6))
    await o2o_shop(client, *east_of(lat, lon, 1))  # nearer, not theirs
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/members",
        json={"phone": phone, "advisor_code": home.shop.advisors[1]},
        headers=home.shop.pos,
    )
    assert r.status_code == 201

    body = order(lat, lon, phone)
    answer = await place(client, channel, body)
    assert answer["route"] == "home_store"
    assert answer["store_code"] == home.shop.code
    assert answer["status"] == "routed"
    assert answer["distance_km"] == pytest.approx(6, abs=0.05)

    # The member's own advisor gets the urgent task, at the top of the list, and a push.
    (task,) = await delivery_tasks(body["order_id"])
    owner = await advisor_id(home.shop.advisors[1])
    assert (task["status"], task["assignee"], task["store"]) == ("open", owner, home.shop.code)
    assert task["priority"] == 1
    pushes = await fetch(
        "SELECT kind FROM push_outbox WHERE advisor = {} AND kind = 'urgent'", owner
    )
    assert pushes


async def test_a_new_customer_goes_to_the_nearest_store_and_joins_it(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    far = await o2o_shop(client, *east_of(lat, lon, 4))
    near = await o2o_shop(client, *east_of(lat, lon, 2))
    await o2o_shop(client, *east_of(lat, lon, 1), o2o=False)  # takes no orders
    body = order(lat, lon)
    answer = await place(client, channel, body)
    assert (answer["route"], answer["store_code"]) == ("nearest", near.shop.code)
    assert answer["distance_km"] == pytest.approx(2, abs=0.05)
    assert far.shop.code != near.shop.code

    (member,) = await fetch(
        "SELECT m.name, s.code, m.recruited_by FROM member m JOIN store s ON s.id = m.home_store"
        " WHERE m.phone = {}",
        body["member_phone"],
    )
    assert (member["name"], member["code"], member["recruited_by"]) == (
        "李女士",
        near.shop.code,
        None,
    )
    (task,) = await delivery_tasks(body["order_id"])
    assert task["store"] == near.shop.code and task["assignee"] is not None


async def test_no_store_in_reach_leaves_the_order_on_hqs_queue(
    client: Client, channel: dict[str, str], hq: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    await o2o_shop(client, *east_of(lat, lon, 12))  # beyond the 10 km radius
    body = order(lat, lon)
    answer = await place(client, channel, body)
    assert answer == {
        "order_id": body["order_id"],
        "status": "unrouted",
        "store_code": None,
        "route": "unrouted",
        "distance_km": None,
    }
    r = await client.get("/hq/v1/o2o/orders?status=unrouted&limit=500", headers=hq)
    assert r.status_code == 200
    assert body["order_id"] in {o["order_id"] for o in r.json()["orders"]}
    assert not await fetch("SELECT id FROM member WHERE phone = {}", body["member_phone"])


async def test_the_same_order_again_gets_the_first_answer_and_another_body_409(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    await o2o_shop(client, *east_of(lat, lon, 3))
    body = order(lat, lon)
    first = await place(client, channel, body)
    again = await client.post("/o2o/v1/orders", json=body, headers=channel)
    assert again.status_code == 200 and again.json() == first
    other = await client.post(
        "/o2o/v1/orders",
        json={**body, "lines": [{**body["lines"][0], "quantity": 2}]},
        headers=channel,
    )
    assert other.status_code == 409
    assert other.headers["content-type"].startswith(PROBLEM)
    assert len(await fetch("SELECT id FROM o2o_order WHERE order_id = {}", body["order_id"])) == 1


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        (lambda b: b["address"].update(latitude=91), 400, "address.latitude"),
        (lambda b: b["address"].update(longitude=-181), 400, "address.longitude"),
        (lambda b: b["address"].update(latitude=0, longitude=0), 422, "address.latitude"),
        (lambda b: b.pop("address"), 400, "address"),
        (lambda b: b["address"].update(text=""), 400, "address.text"),
        (lambda b: b["lines"][0].update(sku="NO-SUCH"), 422, "lines[0].sku"),
        (lambda b: b.update(member_phone="12345678901"), 422, "member_phone"),
        (lambda b: b.update(placed_at="2026-12-20T10:00:00+08:00"), 422, "placed_at"),
    ],
)
async def test_bad_orders_are_field_errors(
    client: Client, channel: dict[str, str], products: None, change: Any, status: int, field: str
) -> None:
    body = order(*_area())
    change(body)
    r = await client.post("/o2o/v1/orders", json=body, headers=channel)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert field in {e["field"] for e in r.json()["errors"]}


async def test_a_store_taking_orders_needs_its_position(client: Client, hq: dict[str, str]) -> None:
    code = unique_code("S")
    r = await client.put(
        f"/hq/v1/stores/{code}",
        json={"name": "无坐标店", "region": "华南", "latitude": 23.1, "o2o": True},
        headers=hq,
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"longitude"}
    ok = await client.put(
        f"/hq/v1/stores/{code}",
        json={
            "name": "有坐标店",
            "region": "华南",
            "latitude": 23.1,
            "longitude": 113.3,
            "o2o": True,
        },
        headers=hq,
    )
    assert ok.status_code == 200 and ok.json()["o2o"] is True
    kept = await client.put(
        f"/hq/v1/stores/{code}",
        json={"name": "改名", "region": "华南", "latitude": 23.1, "longitude": 113.3},
        headers=hq,
    )
    assert kept.json()["o2o"] is True  # left out: as it was


# --- moving on -----------------------------------------------------------------------


async def test_declines_move_the_order_on_in_distance_order_then_to_hq(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    first = await o2o_shop(client, *east_of(lat, lon, 1))
    third = await o2o_shop(client, *east_of(lat, lon, 7))
    second = await o2o_shop(client, *east_of(lat, lon, 3))
    body = order(lat, lon)
    oid = body["order_id"]
    assert (await place(client, channel, body))["store_code"] == first.shop.code

    for shop, then in ((first, second), (second, third)):
        r = await client.post(f"/advisor/v1/orders/{oid}/decline", headers=shop.advisors[0])
        assert r.status_code == 200, r.text
        assert (await history(client, channel, oid))["store_code"] == then.shop.code
        # The member who joined for the order moves with it.
        (member,) = await fetch(
            "SELECT s.code FROM member m JOIN store s ON s.id = m.home_store WHERE m.phone = {}",
            body["member_phone"],
        )
        assert member["code"] == then.shop.code
        # The store that let it go no longer sees it.
        gone = await client.post(f"/advisor/v1/orders/{oid}/accept", headers=shop.advisors[1])
        assert gone.status_code == 404

    r = await client.post(f"/advisor/v1/orders/{oid}/decline", headers=third.advisors[0])
    assert r.status_code == 200
    seen = await history(client, channel, oid)
    assert (seen["status"], seen["store_code"], seen["route"]) == ("unrouted", None, "unrouted")
    assert [(h["event"], h["store_code"]) for h in seen["history"]] == [
        ("routed", first.shop.code),
        ("declined", first.shop.code),
        ("routed", second.shop.code),
        ("declined", second.shop.code),
        ("routed", third.shop.code),
        ("declined", third.shop.code),
    ]
    tasks = await delivery_tasks(oid)
    assert [(t["store"], t["status"]) for t in tasks] == [
        (first.shop.code, "cancelled"),
        (second.shop.code, "cancelled"),
        (third.shop.code, "cancelled"),
    ]
    # The recruit moved between the stores' figures with the member.
    day = "2026-11-20"
    counts = await fetch(
        "SELECT s.code, d.new_members FROM store_day d JOIN store s ON s.id = d.store"
        " WHERE d.period = {} AND s.code IN ({}, {}, {})",
        day,
        first.shop.code,
        second.shop.code,
        third.shop.code,
    )
    assert {c["code"]: c["new_members"] for c in counts if c["new_members"]} == {third.shop.code: 1}


async def test_an_order_not_accepted_in_time_moves_to_the_next_store(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    near = await o2o_shop(client, *east_of(lat, lon, 2))
    nxt = await o2o_shop(client, *east_of(lat, lon, 5))
    body = order(lat, lon)
    oid = body["order_id"]
    await place(client, channel, body)
    now = datetime.fromisoformat(TEST_NOW)

    with clock.living_at(now + timedelta(minutes=29)):
        await reroute_overdue(Limits(accept_minutes=30))
    assert (await history(client, channel, oid))["store_code"] == near.shop.code

    with clock.living_at(now + timedelta(minutes=31)):
        report = await reroute_overdue(Limits(accept_minutes=30))
    assert report.timed_out >= 1
    seen = await history(client, channel, oid)
    assert seen["store_code"] == nxt.shop.code
    assert [h["event"] for h in seen["history"]] == ["routed", "timed_out", "routed"]

    # The next store's clock starts when it got the order; its advisor accepts in time.
    with clock.living_at(now + timedelta(minutes=40)):
        r = await client.post(f"/advisor/v1/orders/{oid}/accept", headers=nxt.advisors[0])
        assert r.status_code == 200
        await reroute_overdue(Limits(accept_minutes=5))
    assert (await history(client, channel, oid))["status"] == "accepted"


async def test_an_unrouted_order_is_offered_again_once_a_store_is_in_reach(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    body = order(lat, lon)
    assert (await place(client, channel, body))["status"] == "unrouted"
    opened = await o2o_shop(client, *east_of(lat, lon, 2))
    with clock.living_at(datetime.fromisoformat(TEST_NOW) + timedelta(minutes=31)):
        await reroute_overdue(Limits(accept_minutes=30))
    seen = await history(client, channel, body["order_id"])
    assert (seen["status"], seen["store_code"]) == ("routed", opened.shop.code)


# --- the store's side ----------------------------------------------------------------


async def test_two_advisors_accepting_at_once_one_wins(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    store = await o2o_shop(client, *east_of(lat, lon, 1))
    body = order(lat, lon)
    await place(client, channel, body)
    oid = body["order_id"]
    answers = await asyncio.gather(
        *(client.post(f"/advisor/v1/orders/{oid}/accept", headers=h) for h in store.advisors)
    )
    assert sorted(r.status_code for r in answers) == [200, 409]
    winner = next(r for r in answers if r.status_code == 200).json()["accepted_by"]
    accepted = [
        h for h in (await history(client, channel, oid))["history"] if h["event"] == "accepted"
    ]
    assert len(accepted) == 1
    # The winner holds the task now; accepting again is harmless for them.
    (task,) = await delivery_tasks(oid)
    assert task["assignee"] == await advisor_id(winner)
    me = store.advisors[store.shop.advisors.index(winner)]
    assert (await client.post(f"/advisor/v1/orders/{oid}/accept", headers=me)).status_code == 200


async def test_a_delivered_order_is_the_stores_purchase_and_recruits_the_member(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    store = await o2o_shop(client, *east_of(lat, lon, 2))
    body = order(lat, lon, amount="358.00")
    oid = body["order_id"]
    await place(client, channel, body)
    who = store.advisors[0]
    assert (await client.post(f"/advisor/v1/orders/{oid}/accept", headers=who)).status_code == 200
    listed = await client.get("/advisor/v1/orders?status=accepted", headers=who)
    assert oid in {o["order_id"] for o in listed.json()["orders"]}

    done = {"receipt_id": unique_code("R"), "delivered_at": "2026-11-20T12:03:00+08:00"}
    r = await client.post(f"/advisor/v1/orders/{oid}/delivered", json=done, headers=who)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["status"] == "delivered" and answer["points_earned"] == 358
    assert answer["points_balance"] == 358

    deliverer = await advisor_id(store.shop.advisors[0])
    (purchase,) = await fetch(
        "SELECT p.advisor, p.total_fen, s.code FROM purchase p JOIN store s ON s.id = p.store"
        " WHERE p.receipt_id = {}",
        done["receipt_id"],
    )
    assert (purchase["advisor"], purchase["total_fen"], purchase["code"]) == (
        deliverer,
        35800,
        store.shop.code,
    )
    (member,) = await fetch(
        "SELECT id, recruited_by, owning_advisor, points_balance FROM member WHERE phone = {}",
        body["member_phone"],
    )
    assert (member["recruited_by"], member["owning_advisor"]) == (deliverer, deliverer)
    facts = await fetch(
        "SELECT kind, amount FROM score_fact WHERE advisor = {} AND member = {} ORDER BY kind",
        deliverer,
        member["id"],
    )
    assert {f["kind"] for f in facts} >= {"new_member", "points"}
    kinds = {
        t["kind"]: t["status"]
        for t in await fetch("SELECT kind, status FROM task WHERE member = {}", member["id"])
    }
    assert kinds["delivery"] == "done"
    assert "welcome" in kinds and "followup_3d" in kinds
    seen = await history(client, channel, oid)
    assert seen["status"] == "delivered"
    assert [h["event"] for h in seen["history"]] == ["routed", "accepted", "delivered"]

    again = await client.post(f"/advisor/v1/orders/{oid}/delivered", json=done, headers=who)
    assert again.status_code == 200 and again.json() == answer
    other = await client.post(
        f"/advisor/v1/orders/{oid}/delivered", json={**done, "receipt_id": "R-OTHER"}, headers=who
    )
    assert other.status_code == 409
    (balance,) = await fetch("SELECT points_balance FROM member WHERE id = {}", member["id"])
    assert balance["points_balance"] == 358


# --- access ----------------------------------------------------------------------------


async def test_each_side_sees_only_its_own(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    store = await o2o_shop(client, *east_of(lat, lon, 1))
    other = await o2o_shop(client, *east_of(lat, lon, 30))  # out of reach of this order
    body = order(lat, lon)
    oid = body["order_id"]
    await place(client, channel, body)

    for action in ("accept", "decline"):
        r = await client.post(f"/advisor/v1/orders/{oid}/{action}", headers=other.advisors[0])
        assert r.status_code == 404
    r = await client.post(
        f"/advisor/v1/orders/{oid}/delivered", json={"receipt_id": "R1"}, headers=other.advisors[0]
    )
    assert r.status_code == 404
    mine = await client.get("/advisor/v1/orders", headers=store.advisors[0])
    theirs = await client.get("/advisor/v1/orders", headers=other.advisors[0])
    assert oid in {o["order_id"] for o in mine.json()["orders"]}
    assert oid not in {o["order_id"] for o in theirs.json()["orders"]}

    # A till's key is not a channel's, and the reverse.
    for headers in (store.shop.pos, {}, {"X-API-Key": "ttch_made_up"}):
        r = await client.post("/o2o/v1/orders", json=order(lat, lon), headers=headers)
        assert r.status_code in (401, 403)
        assert (await client.get(f"/o2o/v1/orders/{oid}", headers=headers)).status_code in (
            401,
            403,
        )
    r = await client.post("/pos/v1/members", json={"phone": unique_phone()}, headers=channel)
    assert r.status_code == 401

    # Another channel cannot read this channel's order.
    web_shop = {"X-API-Key": await create_channel_key("网店")}
    assert (await client.get(f"/o2o/v1/orders/{oid}", headers=web_shop)).status_code == 404


# --- the pages -------------------------------------------------------------------------


async def test_the_owner_page_lists_the_stores_orders_against_the_time_limit(
    client: Client, channel: dict[str, str], products: None
) -> None:
    from tests.test_web import sign_in

    lat, lon = _area()
    store = await o2o_shop(client, *east_of(lat, lon, 2))
    waiting, taken = order(lat, lon), order(lat, lon)
    for body in (waiting, taken):
        await place(client, channel, body)
    r = await client.post(
        f"/advisor/v1/orders/{taken['order_id']}/accept", headers=store.advisors[0]
    )
    assert r.status_code == 200
    phone = unique_phone()
    await accounts.create_user("owner", phone, PASSWORD, store_codes=[store.shop.code])
    client.cookies.clear()
    try:
        await sign_in(client, phone)
        with clock.living_at(datetime.fromisoformat(TEST_NOW) + timedelta(minutes=12)):
            page = await client.get(f"/web/owner/stores/{store.shop.code}")
    finally:
        client.cookies.clear()
    assert page.status_code == 200, page.text[:300]
    section = page.text.split('id="o2o-orders"', 1)[1].split("</section>", 1)[0]
    assert waiting["order_id"] in section and taken["order_id"] in section
    assert "12 / 30 分钟" in section  # the waiting one, against the limit
    assert "配送中" in section and store.shop.advisors[0] in section


def card_of(page: str, order_id: str) -> str:
    """The 紧急 card of an order on the phone's list ('' if it is not there)."""
    urgent = page[page.index('id="s-urgent"') : page.index('id="s-overdue"')]
    found = re.search(
        rf'<details class="card"(?:(?!</details>).)*{order_id}.*?</details>', urgent, re.S
    )
    return found.group(0) if found else ""


async def test_the_phone_page_works_an_order_from_its_card_in_urgent(
    client: Client, channel: dict[str, str], products: None
) -> None:
    from tests.test_member_page import count_of
    from tests.test_web import csrf_of, signed_in

    lat, lon = _area()
    store = await o2o_shop(client, *east_of(lat, lon, 2))
    other = await o2o_shop(client, *east_of(lat, lon, 40))  # out of reach
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/members",
        json={"phone": phone, "name": "王女士", "advisor_code": store.shop.advisors[0]},
        headers=store.shop.pos,
    )
    assert r.status_code == 201
    # Three orders of the advisor's own member: each is a delivery card in 紧急.
    mine, taken, dropped = (order(lat, lon, phone=phone) for _ in range(3))
    for body in (mine, taken, dropped):
        await place(client, channel, body)
    ids = {b["order_id"] for b in (mine, taken, dropped)}
    json_ = {"accept": "application/json"}
    client.cookies.clear()
    try:
        await signed_in(client, store.phones[0])
        with clock.living_at(datetime.fromisoformat(TEST_NOW) + timedelta(minutes=12)):
            listing = await client.get("/web/advisor/")
        page = listing.text
        assert count_of(page, "urgent") == 3
        card = card_of(page, mine["order_id"])
        assert "待接单 · 已等 12 / 30 分钟" in card
        assert f"{FORMULA_1} ×1" in card and "¥358.00" in card and "幸福路 8 号" in card
        assert f'action="/web/advisor/orders/{mine["order_id"]}/accept"' in card
        assert f'formaction="/web/advisor/orders/{mine["order_id"]}/decline"' in card
        assert re.search(r'<form class="order drop"[^>]* hidden>', card)  # 已送达: not yet
        assert 'class="outcome"' not in card  # no call buttons on an order
        token = csrf_of(listing)
        form = {"_csrf_token": token}

        # The member page sends the order's delivery to its card.
        member = await client.get(f"/web/advisor/members/{await member_id_of(phone)}")
        delivery = re.search(r'<div class="task"[^>]*><p><b>送货</b>.*?</div>', member.text, re.S)
        assert delivery and "在今日回访的卡片上接单" in delivery.group(0)
        assert 'class="outcome"' not in delivery.group(0)

        # Without the page's token nothing happens.
        r = await client.post(f"/web/advisor/orders/{mine['order_id']}/accept", headers=json_)
        assert r.status_code == 403
        # A colleague accepted one first: the script gets the 409, a plain form a notice.
        r = await client.post(
            f"/advisor/v1/orders/{taken['order_id']}/accept", headers=store.advisors[1]
        )
        assert r.status_code == 200
        path = f"/web/advisor/orders/{taken['order_id']}/accept"
        r = await client.post(path, data=form, headers=json_)
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        r = await client.post(path, data=form, headers={"accept": "text/html"})
        assert r.status_code == 303
        shown = await client.get(r.headers["location"])
        assert f"订单 {taken['order_id']}:已被同事接单" in shown.text
        assert card_of(shown.text, taken["order_id"]) == ""  # the colleague's now

        # Accept: the card says who, and offers 已送达.
        r = await client.post(
            f"/web/advisor/orders/{mine['order_id']}/accept", data=form, headers=json_
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "order_id": mine["order_id"],
            "status": "accepted",
            "accepted_by": store.shop.advisors[0],
        }
        card = card_of((await client.get("/web/advisor/")).text, mine["order_id"])
        assert "已由我接单" in card and "/accept" not in card
        assert re.search(r'<form class="order drop"[^>]*delivered">', card)  # shown now

        # Decline as a plain form: back to the list, the card gone (the order moved on).
        r = await client.post(
            f"/web/advisor/orders/{dropped['order_id']}/decline",
            data=form,
            headers={"accept": "text/html"},
        )
        assert (r.status_code, r.headers["location"]) == (303, "/web/advisor/")
        assert (await history(client, channel, dropped["order_id"]))["status"] == "unrouted"

        # Delivered: a missing receipt is a field error; then the store's purchase, and
        # the card is in 已完成.
        path = f"/web/advisor/orders/{mine['order_id']}/delivered"
        r = await client.post(path, data={**form, "receipt_id": " "}, headers=json_)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "receipt_id"
        receipt_id = unique_code("R")
        r = await client.post(path, data={**form, "receipt_id": receipt_id}, headers=json_)
        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["points_earned"]) == ("delivered", 358)
        page = (await client.get("/web/advisor/")).text
        assert count_of(page, "urgent") == 0 and not ids & set(re.findall(r"MP\S+", page))
        assert "送货 · 已送达" in page[page.index('id="s-done"') :]
        seen = await history(client, channel, mine["order_id"])
        assert seen["status"] == "delivered"

        # Another store's advisor: not found, whichever way it is asked.
        await signed_in(client, other.phones[0])
        listing = await client.get("/web/advisor/")
        r = await client.post(
            f"/web/advisor/orders/{dropped['order_id']}/accept",
            data={"_csrf_token": csrf_of(listing)},
            headers=json_,
        )
        assert r.status_code == 404
    finally:
        client.cookies.clear()


async def member_id_of(phone: str) -> int:
    return int((await fetch("SELECT id FROM member WHERE phone = {}", phone))[0]["id"])


async def test_hqs_page_shows_the_unrouted_queue_and_routing_by_region(
    client: Client, channel: dict[str, str], products: None
) -> None:
    from tests.test_web import sign_in

    lat, lon = _area()
    body = order(lat, lon)
    await place(client, channel, body)  # no store anywhere near
    phone = unique_phone()
    await accounts.create_user("hq", phone, PASSWORD)
    client.cookies.clear()
    try:
        await sign_in(client, phone)
        page = await client.get("/web/hq/o2o", params={"month": "2026-11"})
    finally:
        client.cookies.clear()
    assert page.status_code == 200, page.text[:300]
    queue = page.text.split('id="o2o-unrouted"', 1)[1]
    assert body["order_id"] in queue
    figures = page.text.split('id="o2o-routing"', 1)[1].split("</section>", 1)[0]
    assert "不在任何门店范围" in figures and "华南" in figures and "全国" in figures


async def test_routing_figures_count_each_route_and_the_median_minutes(
    client: Client, channel: dict[str, str], hq: dict[str, str], products: None
) -> None:
    before = (await client.get("/hq/v1/o2o/routing?period=2026-11", headers=hq)).json()["total"]
    lat, lon = _area()
    store = await o2o_shop(client, *east_of(lat, lon, 2))
    first, second = order(lat, lon), order(lat, lon)
    for body in (first, second):
        await place(client, channel, body)
    await place(client, channel, order(*_area()))  # unrouted (most likely nowhere near)
    now = datetime.fromisoformat(TEST_NOW)
    for body, minutes in ((first, 10), (second, 20)):
        with clock.living_at(now + timedelta(minutes=minutes)):
            r = await client.post(
                f"/advisor/v1/orders/{body['order_id']}/accept", headers=store.advisors[0]
            )
            assert r.status_code == 200
    r = await client.get("/hq/v1/o2o/routing?period=2026-11", headers=hq)
    assert r.status_code == 200
    total = r.json()["total"]
    assert total["orders"] == before["orders"] + 3
    assert total["nearest"] == before["nearest"] + 2
    assert total["accepted"] == before["accepted"] + 2
    bad = await client.get("/hq/v1/o2o/routing?period=2026-13", headers=hq)
    assert bad.status_code in (400, 422)


async def test_a_new_member_left_unrouted_moves_to_the_store_that_takes_the_order_later(
    client: Client, channel: dict[str, str], products: None
) -> None:
    lat, lon = _area()
    first = await o2o_shop(client, *east_of(lat, lon, 3))
    body = order(lat, lon)
    await place(client, channel, body)
    r = await client.post(
        f"/advisor/v1/orders/{body['order_id']}/decline", headers=first.advisors[0]
    )
    assert r.status_code == 200
    assert (await history(client, channel, body["order_id"]))["status"] == "unrouted"
    later = await o2o_shop(client, *east_of(lat, lon, 5))
    with clock.living_at(datetime.fromisoformat(TEST_NOW) + timedelta(minutes=31)):
        await reroute_overdue(Limits(accept_minutes=30))
    assert (await history(client, channel, body["order_id"]))["store_code"] == later.shop.code
    (member,) = await fetch(
        "SELECT s.code FROM member m JOIN store s ON s.id = m.home_store WHERE m.phone = {}",
        body["member_phone"],
    )
    assert member["code"] == later.shop.code


# --- the scheduler and the command line ---------------------------------------------


async def test_only_the_leading_scheduler_moves_overdue_orders(
    client: Client, channel: dict[str, str], products: None
) -> None:
    from advisor_api.scheduler import Scheduler
    from core.lease import Leadership

    lat, lon = _area()
    near = await o2o_shop(client, *east_of(lat, lon, 2))
    nxt = await o2o_shop(client, *east_of(lat, lon, 5))
    body = order(lat, lon)
    await place(client, channel, body)
    later = datetime.fromisoformat(TEST_NOW) + timedelta(minutes=31)
    holder, standby = Leadership(), Scheduler(o2o=Limits(accept_minutes=30))
    try:
        assert await holder.check() is True
        with clock.living_at(later):
            await standby._o2o_reroute()  # stands by: the order stays
        assert (await history(client, channel, body["order_id"]))["store_code"] == near.shop.code
        await holder.release()
        with clock.living_at(later):
            await standby._o2o_reroute()  # takes over, and acts
        assert (await history(client, channel, body["order_id"]))["store_code"] == nxt.shop.code
    finally:
        await holder.release()
        await standby.leadership.release()


async def test_the_command_line_makes_channel_keys_and_moves_overdue_orders(
    client: Client, products: None
) -> None:
    from tests.test_cli import tiantian

    name = f"App{uuid.uuid4().hex[:6]}"
    made = tiantian("channel-key", "create", "--name", name)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("ttch_")
    lat, lon = _area()
    await o2o_shop(client, *east_of(lat, lon, 2))
    r = await client.post("/o2o/v1/orders", json=order(lat, lon), headers={"X-API-Key": key})
    assert r.status_code == 201 and r.json()["status"] == "routed"
    moved = tiantian("o2o", "reroute")
    assert moved.returncode == 0, moved.stderr
    assert "timed out" in moved.stdout.splitlines()[-1]

    # Revoked by its name: the channel is refused from then on; its orders stay.
    gone = tiantian("channel-key", "revoke", "--name", name)
    assert gone.returncode == 0, gone.stderr
    assert "key revoked" in gone.stdout.splitlines()[-1]
    r = await client.post("/o2o/v1/orders", json=order(lat, lon), headers={"X-API-Key": key})
    assert r.status_code == 401
    again = tiantian("channel-key", "revoke", "--name", name)
    assert again.returncode == 2 and f"no active sales channel named {name}" in again.stderr
    assert tiantian("channel-key", "revoke", "--id", "999999999").returncode == 2
