"""However malformed a request, the answer is a problem document, never a 500.

Every field of a valid body of every write endpoint is in turn replaced by each of
a set of hostile values, removed, or joined by an unknown field; then raw bytes that
are not JSON at all. Deterministic, so a failure names its body and repeats.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx

from members import accounts
from tests.conftest import FORMULA_1, PASSWORD, Shop, login, receipt, unique_phone

HOSTILE: list[Any] = [
    None,
    "",
    " ",
    "x" * 5000,
    "\u0000",
    "a\u0000b",
    "\ud7ff\ue000",
    "２０２６",
    "NaN",
    "Infinity",
    "-0",
    "1e400",
    "2026-13-45",
    "2026-02-30T25:61:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    0,
    -1,
    1,
    2**31,
    2**63,
    2**70,
    -(2**70),
    1.5,
    1e308,
    -1e308,
    True,
    False,
    [],
    {},
    [None],
    {"a": 1},
]
RAW_BODIES = [
    b"",
    b"{",
    b"[",
    b"null",
    b"1",
    b'"str"',
    b"[1,2]",
    b"\xff\xfe",
    b'{"a":' * 2000,
    b'{"x": 1e999}',
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield (*prefix, i)
            yield from paths(inner, (*prefix, i))


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(body)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def removed(body: Any, path: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(body)
    target = out
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return out


def mutants(body: dict[str, Any]) -> Iterator[Any]:
    for path in paths(body):
        for value in HOSTILE:
            yield replaced(body, path, value)
        yield removed(body, path)
    yield {**body, "unexpected": {"nested": [1, 2, 3]}}


def assert_problem(r: httpx.Response, what: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text, what)
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json", (r.headers, what)
        body = r.json()
        assert body["status"] == r.status_code and body["title"] and "detail" in body


async def send_all(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any], headers: dict[str, str]
) -> int:
    sent = 0
    for mutant in mutants(body):
        r = await client.request(method, url, json=mutant, headers=headers)
        assert_problem(r, mutant)
        sent += 1
    for raw in RAW_BODIES:
        r = await client.request(
            method, url, content=raw, headers={**headers, "content-type": "application/json"}
        )
        assert_problem(r, raw)
        sent += 1
    return sent


async def test_pos_writes_never_answer_500(client: httpx.AsyncClient, shop: Shop) -> None:
    phone = unique_phone()
    await client.post(
        "/pos/v1/purchases",
        json=receipt(phone=phone, lines=[(FORMULA_1, 1, "500.00")]),
        headers=shop.pos,
    )
    bodies = {
        "/pos/v1/members": {
            "phone": unique_phone(),
            "name": "王女士",
            "advisor_code": shop.advisors[0],
            "registered_at": "2026-11-20T09:00:00+08:00",
            "babies": [{"name": "乐乐", "birth_date": "2026-01-02", "due_date": None}],
            "do_not_contact": False,
        },
        "/pos/v1/purchases": receipt(advisor_code=shop.advisors[0]),
        "/pos/v1/redemptions": {
            "redemption_id": "rd-1",
            "member_phone": phone,
            "points": 1,
            "redeemed_at": "2026-11-20T10:00:00+08:00",
        },
    }
    sent = 0
    for url, body in bodies.items():
        sent += await send_all(client, "POST", url, body, shop.pos)
    sent += await send_all(
        client, "POST", "/pos/v1/purchases/batch", {"purchases": [receipt()]}, shop.pos
    )
    assert sent > 1000


async def test_a_batch_of_hostile_receipts_is_answered_receipt_by_receipt(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    batch = list(mutants(receipt()))[:500]
    r = await client.post("/pos/v1/purchases/batch", json={"purchases": batch}, headers=shop.pos)
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == len(batch)


async def test_registry_and_login_never_answer_500(
    client: httpx.AsyncClient, hq: dict[str, str]
) -> None:
    await send_all(
        client,
        "PUT",
        "/hq/v1/stores/SX1",
        {
            "name": "店",
            "region": "华南",
            "timezone": "Asia/Shanghai",
            "latitude": 23.1,
            "longitude": 113.3,
        },
        hq,
    )
    await send_all(
        client,
        "PUT",
        "/hq/v1/advisors/AX1",
        {"name": "顾问", "phone": "13900000000", "store_code": "SX1", "active": True},
        hq,
    )
    await send_all(
        client,
        "PUT",
        "/hq/v1/products/PX1",
        {
            "name": "奶粉",
            "category": "formula",
            "stage": 1,
            "days_of_supply": 12,
            "points_eligible": True,
        },
        hq,
    )
    phone = unique_phone()
    await accounts.create_user("owner", phone, PASSWORD, store_codes=["SX1"])
    await send_all(client, "POST", "/auth/login", {"phone": phone, "password": PASSWORD}, {})
    # Hundreds of wrong passwords later the phone is locked out; others still sign in.
    locked = await client.post("/auth/login", json={"phone": phone, "password": PASSWORD})
    assert locked.status_code == 429
    fresh = unique_phone()
    await accounts.create_user("owner", fresh, PASSWORD, store_codes=["SX1"])
    assert (await login(client, fresh))["Authorization"].startswith("Bearer ")


async def test_odd_paths_and_queries_never_answer_500(
    client: httpx.AsyncClient, shop: Shop, hq: dict[str, str]
) -> None:
    for phone in ["x", "%00", "1" * 40, "+86%20138", "..", "13800138000%0A"]:
        assert_problem(await client.get(f"/pos/v1/members/{phone}", headers=shop.pos), phone)
    for query in ["limit=abc", "limit=0", "limit=100000", "offset=-1", "region=%00", "limit=1e9"]:
        assert_problem(await client.get(f"/hq/v1/stores?{query}", headers=hq), query)
    assert_problem(await client.get("/hq/v1/products/" + "x" * 300, headers=hq), "long sku")
    assert_problem(await client.delete("/pos/v1/purchases", headers=shop.pos), "method")
