"""Who may call what: an access matrix over every operation in the live OpenAPI document.

``EXPECTED`` is the matrix: for each operation (``"METHOD /path"``, as the document
names it) and each caller, what a valid request on the caller's OWN objects gets:
``OK`` (let through to the business rules), 401 (no or wrong kind of credentials) or
403 (signed in, but not a role this path is for). The callers:

- ``none``: no credentials at all;
- ``pos``: store A's till, ``X-API-Key``;
- ``advisor``: an advisor of store A, Bearer token;
- ``owner``: the owner of store A, Bearer token;
- ``region``: a regional marketer (营销通) of store A's region, Bearer token;
- ``hq``: head office, Bearer token;
- ``channel``: a sales channel (O2O orders), its own ``X-API-Key``.

Every operation in the document must have a row and every row an operation, so a
new route cannot land without saying who may use it. ``REQUESTS`` holds the one
valid request per operation that the matrix sends as each caller.

``OTHER_STORE`` is the second half: for each operation that names an object of a
store (a member, a task, a store code, a device, a contest over a store, a store's
insights and targets), what the till, advisor and owner of ANOTHER store get when
they send the same request about store A's object. ``OTHER_REGION`` is the same for
the regional login of store B's region: another region's store is not found, another
region (or the chain) is forbidden. A role the path is not for gets its 401/403 from
``EXPECTED``.

The schema itself (``/schema/openapi.json``, fetched here without credentials),
``/health…`` and ``/auth/login`` are public.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import httpx
import pytest

from core.db import fetch
from members import accounts
from orders.channels import create_channel_key
from tests.conftest import (
    FORMULA_1,
    PASSWORD,
    Shop,
    login,
    make_shop,
    receipt,
    unique_code,
    unique_phone,
)
from tests.test_outcomes import open_tasks, outcome
from tests.test_tasks import advisor_login, buy, join

PROBLEM = "application/problem+json"
METHODS = {"get", "put", "post", "patch", "delete"}

# --- the matrix ------------------------------------------------------------------

OK = "allowed"
Access = Literal["allowed", 401, 403]


class Who(NamedTuple):
    none: Access
    pos: Access
    advisor: Access
    owner: Access
    region: Access
    hq: Access
    # A sales channel's key is neither a till's key nor a token: 401 but on /o2o.
    channel: Access = 401


ROLES = Who._fields

# No credentials asked; any that are sent are ignored.
PUBLIC = Who(none=OK, pos=OK, advisor=OK, owner=OK, region=OK, hq=OK, channel=OK)
# The till's key and nothing else: a person's Bearer token is not a till key.
TILL = Who(none=401, pos=OK, advisor=401, owner=401, region=401, hq=401)
# People's paths want a Bearer token; a till key is no token, hence 401 for the till.
ADVISOR = Who(none=401, pos=401, advisor=OK, owner=403, region=403, hq=403)
# Watching stores: their owner, their region and HQ.
WATCHERS = Who(none=401, pos=401, advisor=403, owner=OK, region=OK, hq=OK)
# Splitting a store's target: its owner (and HQ), not a region.
OWNER_OR_HQ = Who(none=401, pos=401, advisor=403, owner=OK, region=403, hq=OK)
SIGNED_IN = Who(none=401, pos=401, advisor=OK, owner=OK, region=OK, hq=OK)
HQ = Who(none=401, pos=401, advisor=403, owner=403, region=403, hq=OK)
# A sales channel's paths: its key alone; a till's key or a person's token is not one.
CHANNEL = Who(none=401, pos=401, advisor=401, owner=401, region=401, hq=401, channel=OK)

EXPECTED: dict[str, Who] = {
    # Health and sign-in
    "GET /health": PUBLIC,
    "GET /health/live": PUBLIC,
    "GET /health/ready": PUBLIC,
    "POST /auth/login": PUBLIC,  # the phone and password are the credentials
    # The till
    "POST /pos/v1/members": TILL,
    "GET /pos/v1/members/{phone}": TILL,
    "POST /pos/v1/purchases": TILL,
    "POST /pos/v1/purchases/batch": TILL,
    "POST /pos/v1/redemptions": TILL,
    "POST /pos/v1/returns": TILL,
    # The advisor's own day
    "GET /advisor/v1/today": ADVISOR,
    "GET /advisor/v1/tasks": ADVISOR,
    "POST /advisor/v1/tasks/{task_id}/outcome": ADVISOR,
    "POST /advisor/v1/tasks/{task_id}/snooze": ADVISOR,
    "GET /advisor/v1/members": ADVISOR,
    "GET /advisor/v1/members/{member_id}": ADVISOR,
    "POST /advisor/v1/devices": ADVISOR,
    "DELETE /advisor/v1/devices/{token}": ADVISOR,
    "GET /advisor/v1/me/score": ADVISOR,
    # The owner's stores (their region and HQ may look too)
    "GET /owner/v1/stores/{store_code}/dashboard": WATCHERS,
    "PUT /owner/v1/stores/{store_code}/targets/{month}": OWNER_OR_HQ,
    "GET /owner/v1/stores/{store_code}/settlement": WATCHERS,
    # League tables and contests: every signed-in person
    "GET /v1/leaderboards/advisors": SIGNED_IN,
    "GET /v1/leaderboards/stores": SIGNED_IN,
    "GET /v1/contests/{contest_id}/standings": SIGNED_IN,
    # Insights: owners, regions and HQ; targets: everyone signed in reads them
    "GET /v1/insights/playbook": WATCHERS,
    "GET /v1/insights/members": WATCHERS,
    "GET /v1/targets/{month}": SIGNED_IN,
    # Head office: the registry
    "GET /hq/v1/stores": HQ,
    "GET /hq/v1/stores/{code}": HQ,
    "PUT /hq/v1/stores/{code}": HQ,
    "GET /hq/v1/advisors": HQ,
    "GET /hq/v1/advisors/{code}": HQ,
    "PUT /hq/v1/advisors/{code}": HQ,
    "GET /hq/v1/products": HQ,
    "GET /hq/v1/products/{sku}": HQ,
    "PUT /hq/v1/products/{sku}": HQ,
    # Head office: the playbook and campaigns
    "GET /hq/v1/playbook": HQ,
    "PUT /hq/v1/playbook": HQ,
    "POST /hq/v1/campaigns": HQ,
    # Head office: incentives
    "GET /hq/v1/score-weights": HQ,
    "PUT /hq/v1/score-weights": HQ,
    "GET /hq/v1/bonus-rates": HQ,
    "PUT /hq/v1/bonus-rates": HQ,
    "POST /hq/v1/contests": HQ,
    "POST /hq/v1/periods/{month}/close": HQ,
    "GET /hq/v1/bonus-statements": HQ,
    "GET /hq/v1/score-ledger": HQ,
    "PUT /hq/v1/targets/{month}": HQ,
    # Head office: points as money
    "GET /hq/v1/points-policy": HQ,
    "PUT /hq/v1/points-policy": HQ,
    "GET /hq/v1/points-promotions": HQ,
    "POST /hq/v1/points-promotions": HQ,
    "GET /hq/v1/settlements": HQ,
    # O2O orders: the channels place them, the store's advisors deliver, HQ watches
    "POST /o2o/v1/orders": CHANNEL,
    "GET /o2o/v1/orders/{order_id}": CHANNEL,
    "GET /advisor/v1/orders": ADVISOR,
    "POST /advisor/v1/orders/{order_id}/accept": ADVISOR,
    "POST /advisor/v1/orders/{order_id}/decline": ADVISOR,
    "POST /advisor/v1/orders/{order_id}/delivered": ADVISOR,
    "GET /hq/v1/o2o/orders": HQ,
    "GET /hq/v1/o2o/routing": HQ,
    # Head office: the audit trail
    "GET /hq/v1/audit": HQ,
    "POST /hq/v1/imports/{kind}": HQ,
}

# An allowed caller gets a 2xx, except where a business rule answers first:
BUSINESS_ANSWERS: dict[str, tuple[int, str]] = {
    "POST /hq/v1/periods/{month}/close": (
        409,
        "the month asked is the current one, not over yet: closing a finished month"
        " would freeze it for every other test of the run",
    ),
}

# What the till, advisor and owner of ANOTHER store (store B, in another region) get
# when they send the same request about store A's object, if the path is for their role.
OTHER_STORE: dict[str, tuple[Access | int, str]] = {
    "GET /pos/v1/members/{phone}": (OK, "by design: any till of the chain may look a member up"),
    "POST /pos/v1/members": (422, "the body names an advisor of store A: not the key's store"),
    "POST /pos/v1/purchases": (422, "the receipt names an advisor of store A"),
    "POST /pos/v1/redemptions": (OK, "by design: a member's points are chain-wide"),
    "POST /pos/v1/returns": (422, "the receipt is store A's: no such receipt at the key's store"),
    "GET /owner/v1/stores/{store_code}/settlement": (404, "another owner's store is not found"),
    "GET /advisor/v1/members/{member_id}": (404, "a member of another store is not found"),
    "GET /advisor/v1/members": (
        OK,
        "a search of the caller's own store: store A's member is not among the hits (checked)",
    ),
    "POST /advisor/v1/tasks/{task_id}/outcome": (404, "another advisor's task is not found"),
    "POST /advisor/v1/tasks/{task_id}/snooze": (404, "another advisor's task is not found"),
    "DELETE /advisor/v1/devices/{token}": (
        204,
        "as for a token never registered, so the answer tells nothing; the device stays"
        " with its advisor (checked)",
    ),
    "GET /owner/v1/stores/{store_code}/dashboard": (404, "another owner's store is not found"),
    "PUT /owner/v1/stores/{store_code}/targets/{month}": (
        404,
        "another owner's store is not found (the targets stay as they were: checked)",
    ),
    "GET /v1/insights/playbook": (404, "another owner's store is not found"),
    "GET /v1/insights/members": (404, "another owner's store is not found"),
    "GET /v1/targets/{month}": (404, "another store's table is not found, for its advisors too"),
    "GET /v1/contests/{contest_id}/standings": (
        OK,
        "by design, like the league tables; names outside the viewer's region are masked (checked)",
    ),
    # The registry names stores and advisors too, but only HQ may use it (403 above).
    "GET /hq/v1/stores/{code}": (403, "HQ only"),
    "GET /hq/v1/advisors/{code}": (403, "HQ only"),
    "GET /hq/v1/score-ledger": (403, "HQ only"),
    "PUT /hq/v1/targets/{month}": (403, "HQ only"),
    "GET /o2o/v1/orders/{order_id}": (404, "another channel's order is not found"),
    "POST /advisor/v1/orders/{order_id}/accept": (404, "another store's order is not found"),
    "POST /advisor/v1/orders/{order_id}/decline": (404, "another store's order is not found"),
    "POST /advisor/v1/orders/{order_id}/delivered": (404, "another store's order is not found"),
}

# What the regional login of store B's region (华东) gets about store A (in 华南): a
# store outside its region is not found, another region is forbidden.
OTHER_REGION: dict[str, tuple[Access | int, str]] = {
    "GET /owner/v1/stores/{store_code}/dashboard": (404, "a store of another region"),
    "GET /owner/v1/stores/{store_code}/settlement": (404, "a store of another region"),
    "GET /v1/insights/playbook": (404, "a store of another region"),
    "GET /v1/insights/members": (404, "a store of another region"),
    "GET /v1/targets/{month}": (404, "a store of another region"),
    "GET /v1/leaderboards/advisors": (404, "scope store:A, a store of another region"),
    "GET /v1/leaderboards/stores": (403, "scope region:华南, another region"),
    "GET /v1/contests/{contest_id}/standings": (404, "a league over another region's store"),
    "PUT /owner/v1/stores/{store_code}/targets/{month}": (403, "owners and HQ only"),
    "PUT /hq/v1/targets/{month}": (403, "HQ only"),
}

# The other advisor of store A, on the first advisor's objects.
COLLEAGUE: dict[str, tuple[Access | int, str]] = {
    "GET /advisor/v1/members/{member_id}": (OK, "the store's members are every advisor's"),
    "GET /advisor/v1/members": (OK, "the store's members are every advisor's (found: checked)"),
    "POST /advisor/v1/tasks/{task_id}/outcome": (404, "a task is its assignee's alone"),
    "POST /advisor/v1/tasks/{task_id}/snooze": (404, "a task is its assignee's alone"),
    "DELETE /advisor/v1/devices/{token}": (204, "nothing removed (checked)"),
    "POST /advisor/v1/orders/{order_id}/accept": (OK, "the store's orders are every advisor's"),
}


# --- the world the requests are about --------------------------------------------


@dataclass
class World:
    a: Shop
    b: Shop
    callers: dict[str, dict[str, str]]  # none, pos, advisor, owner, region, hq, channel
    strangers: dict[str, dict[str, str]]  # pos, advisor, owner of store B; another channel
    other_region: dict[str, str]  # the regional login of store B's region
    colleague: dict[str, str]  # store A's other advisor
    advisor_phone: str  # the advisor's login
    member_phone: str  # a member of store A, owned by the advisor
    member_id: int
    outcome_task: int  # two open tasks of the advisor's, on that member
    snooze_task: int
    device_token: str  # the advisor's phone
    contest_id: int  # a league over store A's advisors
    store_a: dict[str, Any]  # as HQ reads them, to be put back unchanged
    advisor_a: dict[str, Any]
    rates: dict[str, Any]
    policy: dict[str, Any]  # the points policy in force, to be put back unchanged
    receipt_id: str  # store A's receipt of five cans, brought back one at a time
    position: tuple[float, float]  # store A's: it takes O2O orders
    orders: dict[str, str]  # the channel's orders routed to store A, one per action


async def owner_login(client: httpx.AsyncClient, store_code: str) -> dict[str, str]:
    phone = unique_phone()
    await accounts.create_user("owner", phone, PASSWORD, store_codes=[store_code])
    return await login(client, phone)


async def region_login(client: httpx.AsyncClient, region: str) -> dict[str, str]:
    phone = unique_phone()
    await accounts.create_user("region", phone, PASSWORD, region=region)
    return await login(client, phone)


@pytest.fixture
async def world(client: httpx.AsyncClient, hq: dict[str, str], products: None) -> World:
    a, b = await make_shop(), await make_shop(region="华东")
    advisor_phone = unique_phone()
    await accounts.create_user("advisor", advisor_phone, PASSWORD, advisor_code=a.advisors[0])
    advisor = await login(client, advisor_phone)
    phone = await join(client, a, a.advisors[0])
    await buy(client, a, phone, "2026-11-17T10:00:00+08:00")  # followup_3d and replenish
    (followup,) = await open_tasks(phone, "followup_3d")
    (replenish,) = await open_tasks(phone, "replenish")
    member = await client.get(f"/pos/v1/members/{phone}", headers=a.pos)
    token = f"fcm-{uuid.uuid4().hex}"
    r = await client.post(
        "/advisor/v1/devices", json={"token": token, "platform": "android"}, headers=advisor
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/hq/v1/contests",
        json={
            "name": "矩阵先锋赛",
            "kind": "league",
            "subject": "advisor",
            "scope": f"store:{a.code}",
            "starts_on": "2026-11-01",
            "ends_on": "2026-11-30",
        },
        headers=hq,
    )
    assert r.status_code == 201, r.text
    contest_id = r.json()["contest_id"]
    # Store A takes O2O orders, somewhere no other test's orders reach.
    position = (-30 - random.random() * 10, -60 - random.random() * 10)
    r = await client.put(
        f"/hq/v1/stores/{a.code}",
        json={
            "name": "矩阵店",
            "region": "华南",
            "latitude": position[0],
            "longitude": position[1],
            "o2o": True,
        },
        headers=hq,
    )
    assert r.status_code == 200, r.text
    channel = {"X-API-Key": await create_channel_key("矩阵渠道")}
    orders = {}
    for action in ("read", "accept", "decline", "delivered"):
        r = await client.post("/o2o/v1/orders", json=o2o_order(position), headers=channel)
        assert r.status_code == 201 and r.json()["store_code"] == a.code, r.text
        orders[action] = r.json()["order_id"]
    store_a = (await client.get(f"/hq/v1/stores/{a.code}", headers=hq)).json()
    advisor_a = (await client.get(f"/hq/v1/advisors/{a.advisors[0]}", headers=hq)).json()
    rates = await client.get("/hq/v1/bonus-rates", params={"period": "2026-11"}, headers=hq)
    policy = await client.get("/hq/v1/points-policy", headers=hq)
    cans = receipt(lines=[(FORMULA_1, 5, "1790.00")], advisor_code=a.advisors[0])
    assert (await client.post("/pos/v1/purchases", json=cans, headers=a.pos)).status_code == 201
    return World(
        a=a,
        b=b,
        callers={
            "none": {},
            "pos": a.pos,
            "advisor": advisor,
            "owner": await owner_login(client, a.code),
            "region": await region_login(client, "华南"),
            "hq": hq,
            "channel": channel,
        },
        strangers={
            "pos": b.pos,
            "advisor": await advisor_login(client, b.advisors[0]),
            "owner": await owner_login(client, b.code),
            "channel": {"X-API-Key": await create_channel_key("另一渠道")},
        },
        other_region=await region_login(client, "华东"),
        colleague=await advisor_login(client, a.advisors[1]),
        advisor_phone=advisor_phone,
        member_phone=phone,
        member_id=member.json()["member_id"],
        outcome_task=followup,
        snooze_task=replenish,
        device_token=token,
        contest_id=contest_id,
        store_a={k: v for k, v in store_a.items() if k != "code"},
        advisor_a={k: v for k, v in advisor_a.items() if k != "code"},
        rates=rates.json(),
        policy=policy.json(),
        receipt_id=cans["receipt_id"],
        position=position,
        orders=orders,
    )


def o2o_order(position: tuple[float, float]) -> dict[str, Any]:
    return {
        "order_id": unique_code("O"),
        "member_phone": unique_phone(),
        "address": {"text": "矩阵路 1 号", "latitude": position[0], "longitude": position[1]},
        "lines": [{"sku": FORMULA_1, "quantity": 1, "amount": "358.00"}],
        "placed_at": "2026-11-20T11:00:00+08:00",
    }


# --- one valid request per operation ---------------------------------------------


@dataclass
class Call:
    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    csv: str | None = None  # a text/csv body instead of JSON


def _new_member(w: World) -> Call:
    return Call(body={"phone": unique_phone(), "name": "新妈妈", "advisor_code": w.a.advisors[0]})


# Each builder is called anew for every request, so client ids are never replayed.
# POS writes use new phones, so the advisor's two tasks are not superseded meanwhile.
REQUESTS: dict[str, Callable[[World], Call]] = {
    "GET /health": lambda w: Call(),
    "GET /health/live": lambda w: Call(),
    "GET /health/ready": lambda w: Call(),
    "POST /auth/login": lambda w: Call(body={"phone": w.advisor_phone, "password": PASSWORD}),
    "POST /pos/v1/members": _new_member,
    "GET /pos/v1/members/{phone}": lambda w: Call(path={"phone": w.member_phone}),
    "POST /pos/v1/purchases": lambda w: Call(body=receipt(advisor_code=w.a.advisors[0])),
    "POST /pos/v1/purchases/batch": lambda w: Call(body={"purchases": [receipt(), receipt()]}),
    "POST /pos/v1/redemptions": lambda w: Call(
        body={
            "redemption_id": unique_code("RD"),
            "member_phone": w.member_phone,
            "points": 1,
            "redeemed_at": "2026-11-20T11:00:00+08:00",
        }
    ),
    "GET /advisor/v1/today": lambda w: Call(query={"date": "2026-11-20"}),
    "GET /advisor/v1/tasks": lambda w: Call(query={"limit": 100}),
    "POST /advisor/v1/tasks/{task_id}/outcome": lambda w: Call(
        path={"task_id": w.outcome_task}, body=outcome("reached")
    ),
    "POST /advisor/v1/tasks/{task_id}/snooze": lambda w: Call(
        path={"task_id": w.snooze_task}, body={"until": "2026-11-27"}
    ),
    "GET /advisor/v1/members/{member_id}": lambda w: Call(path={"member_id": w.member_id}),
    "GET /advisor/v1/members": lambda w: Call(query={"q": w.member_phone[-4:]}),
    "POST /advisor/v1/devices": lambda w: Call(
        body={"token": f"fcm-{uuid.uuid4().hex}", "platform": "ios"}
    ),
    "DELETE /advisor/v1/devices/{token}": lambda w: Call(path={"token": w.device_token}),
    "GET /advisor/v1/me/score": lambda w: Call(query={"period": "2026-11"}),
    "GET /owner/v1/stores/{store_code}/dashboard": lambda w: Call(
        path={"store_code": w.a.code}, query={"period": "2026-11"}
    ),
    "GET /v1/leaderboards/advisors": lambda w: Call(
        query={"scope": f"store:{w.a.code}", "period": "2026-11"}
    ),
    "GET /v1/leaderboards/stores": lambda w: Call(query={"scope": "region:华南", "limit": 10}),
    "GET /v1/contests/{contest_id}/standings": lambda w: Call(path={"contest_id": w.contest_id}),
    "GET /hq/v1/stores": lambda w: Call(query={"region": "华南", "limit": 10}),
    "GET /hq/v1/stores/{code}": lambda w: Call(path={"code": w.a.code}),
    "PUT /hq/v1/stores/{code}": lambda w: Call(path={"code": w.a.code}, body=w.store_a),
    "GET /hq/v1/advisors": lambda w: Call(query={"store_code": w.a.code}),
    "GET /hq/v1/advisors/{code}": lambda w: Call(path={"code": w.a.advisors[0]}),
    "PUT /hq/v1/advisors/{code}": lambda w: Call(path={"code": w.a.advisors[0]}, body=w.advisor_a),
    "GET /hq/v1/products": lambda w: Call(query={"category": "formula", "limit": 10}),
    "GET /hq/v1/products/{sku}": lambda w: Call(path={"sku": FORMULA_1}),
    "PUT /hq/v1/products/{sku}": lambda w: Call(
        path={"sku": unique_code("P")}, body={"name": "米粉", "category": "cereal"}
    ),
    "GET /hq/v1/playbook": lambda w: Call(),
    "PUT /hq/v1/playbook": lambda w: Call(body={"rules": []}),  # kinds not listed stay
    "POST /hq/v1/campaigns": lambda w: Call(
        body={
            "name": "矩阵活动",
            "starts_on": "2026-11-20",
            "ends_on": "2026-11-30",
            "segment": {"store_codes": [w.a.code]},
            "script": "您好，{store}本周有活动",
        }
    ),
    "GET /hq/v1/score-weights": lambda w: Call(),
    "PUT /hq/v1/score-weights": lambda w: Call(body={}),  # keys left out stay
    "GET /hq/v1/bonus-rates": lambda w: Call(query={"period": "2026-11"}),
    "PUT /hq/v1/bonus-rates": lambda w: Call(body=w.rates),  # what is in force, put back
    "POST /hq/v1/contests": lambda w: Call(
        body={
            "name": "门店赛",
            "kind": "league",
            "subject": "store",
            "scope": f"store:{w.a.code}",
            "starts_on": "2026-11-01",
            "ends_on": "2026-11-30",
        }
    ),
    "POST /hq/v1/periods/{month}/close": lambda w: Call(path={"month": "2026-11"}),
    "GET /hq/v1/bonus-statements": lambda w: Call(query={"period": "2026-11"}),
    "GET /hq/v1/score-ledger": lambda w: Call(
        query={"advisor": w.a.advisors[0], "booked_month": "2026-11"}
    ),
    "GET /v1/insights/playbook": lambda w: Call(
        query={"scope": f"store:{w.a.code}", "period": "2026-11"}
    ),
    "GET /v1/insights/members": lambda w: Call(
        query={"scope": f"store:{w.a.code}", "period": "2026-11"}
    ),
    "GET /v1/targets/{month}": lambda w: Call(
        path={"month": "2026-11"}, query={"scope": f"store:{w.a.code}", "subject": "advisor"}
    ),
    "PUT /hq/v1/targets/{month}": lambda w: Call(
        path={"month": "2026-11"},
        body={
            "targets": [{"subject": "store", "code": w.a.code, "new_members": 4, "points": 2000}]
        },
    ),
    "PUT /owner/v1/stores/{store_code}/targets/{month}": lambda w: Call(
        path={"store_code": w.a.code, "month": "2026-11"},
        body={"advisors": [{"code": w.a.advisors[0], "new_members": 2, "points": 1000}]},
    ),
    "POST /pos/v1/returns": lambda w: Call(
        body={
            "return_id": unique_code("RT"),
            "receipt_id": w.receipt_id,
            "returned_at": "2026-11-20T11:30:00+08:00",
            "lines": [{"sku": FORMULA_1, "quantity": 1, "amount": "1.00"}],
        }
    ),
    "GET /owner/v1/stores/{store_code}/settlement": lambda w: Call(
        path={"store_code": w.a.code}, query={"period": "2026-11"}
    ),
    "GET /hq/v1/points-policy": lambda w: Call(),
    "PUT /hq/v1/points-policy": lambda w: Call(body=w.policy),  # what is in force, put back
    "GET /hq/v1/points-promotions": lambda w: Call(),
    "POST /hq/v1/points-promotions": lambda w: Call(
        body={
            "promotion_id": unique_code("P"),
            "name": "矩阵双倍",
            "starts_on": "2026-12-01",
            "ends_on": "2026-12-02",
            "multiplier": 2,
            "store_codes": [w.a.code],
        }
    ),
    "GET /hq/v1/settlements": lambda w: Call(query={"period": "2026-11"}),
    "POST /o2o/v1/orders": lambda w: Call(body=o2o_order(w.position)),
    "GET /o2o/v1/orders/{order_id}": lambda w: Call(path={"order_id": w.orders["read"]}),
    "GET /advisor/v1/orders": lambda w: Call(query={"status": "routed"}),
    "POST /advisor/v1/orders/{order_id}/accept": lambda w: Call(
        path={"order_id": w.orders["accept"]}
    ),
    "POST /advisor/v1/orders/{order_id}/decline": lambda w: Call(
        path={"order_id": w.orders["decline"]}
    ),
    "POST /advisor/v1/orders/{order_id}/delivered": lambda w: Call(
        path={"order_id": w.orders["delivered"]}, body={"receipt_id": unique_code("R")}
    ),
    "GET /hq/v1/o2o/orders": lambda w: Call(query={"status": "unrouted", "limit": 10}),
    "GET /hq/v1/o2o/routing": lambda w: Call(query={"period": "2026-11"}),
    "GET /hq/v1/audit": lambda w: Call(query={"entity": "store", "limit": 5}),
    "POST /hq/v1/imports/{kind}": lambda w: Call(
        path={"kind": "products"},
        csv=f"sku,name,category\n{unique_code('P')},矩阵米粉,cereal\n",
    ),
}


# --- sending ---------------------------------------------------------------------


async def operations(client: httpx.AsyncClient) -> list[str]:
    """Every operation of the live document, as ``"METHOD /path"``."""
    r = await client.get("/schema/openapi.json")  # public: no credentials
    assert r.status_code == 200, r.text
    return [
        f"{method.upper()} {path}"
        for path, item in r.json()["paths"].items()
        for method in item
        if method in METHODS
    ]


async def send(
    client: httpx.AsyncClient, w: World, operation: str, headers: dict[str, str]
) -> httpx.Response:
    method, template = operation.split(" ", 1)
    call = REQUESTS[operation](w)
    path = re.sub(r"\{(\w+)\}", lambda m: str(call.path[m.group(1)]), template)
    if call.csv is not None:
        csv_headers = {**headers, "Content-Type": "text/csv"}
        return await client.request(
            method, path, params=call.query, content=call.csv.encode(), headers=csv_headers
        )
    return await client.request(method, path, params=call.query, json=call.body, headers=headers)


def judge(operation: str, caller: str, expected: Access | int, r: httpx.Response) -> str | None:
    """What is wrong with the answer, if anything."""
    got = f"{operation} as {caller}: {r.status_code} {r.text[:200]}"
    if expected == OK:
        allowed = 200 <= r.status_code < 300
        noted = BUSINESS_ANSWERS.get(operation)
        if not allowed and not (noted and noted[0] == r.status_code):
            return f"{got} (expected it allowed)"
        return None
    if r.status_code != expected:
        return f"{got} (expected {expected})"
    if r.status_code >= 400 and (
        r.headers.get("content-type") != PROBLEM or r.json().get("status") != r.status_code
    ):
        return f"{got} (expected a {PROBLEM} body, got {r.headers.get('content-type')})"
    return None


# --- the tests -------------------------------------------------------------------


async def test_the_table_names_every_operation_of_the_document_and_no_other(
    client: httpx.AsyncClient,
) -> None:
    documented = set(await operations(client))
    unlisted = sorted(documented - EXPECTED.keys())
    assert not unlisted, f"operations in the document with no row in EXPECTED: {unlisted}"
    stale = sorted(EXPECTED.keys() - documented)
    assert not stale, f"rows in EXPECTED for operations the document no longer has: {stale}"
    assert REQUESTS.keys() == EXPECTED.keys(), "every row needs its request in REQUESTS"
    assert OTHER_STORE.keys() <= EXPECTED.keys() and COLLEAGUE.keys() <= EXPECTED.keys()
    assert OTHER_REGION.keys() <= EXPECTED.keys()
    assert BUSINESS_ANSWERS.keys() <= EXPECTED.keys()


async def test_every_caller_gets_what_the_table_says(
    client: httpx.AsyncClient, world: World
) -> None:
    wrong: list[str] = []
    sent = 0
    documented = await operations(client)
    for stale in sorted(EXPECTED.keys() - set(documented)):
        wrong.append(f"{stale}: a row in EXPECTED, not in the document")
    for operation in documented:
        who = EXPECTED.get(operation)
        if who is None:
            wrong.append(f"{operation}: no row in EXPECTED")
            continue
        for caller in ROLES:
            r = await send(client, world, operation, world.callers[caller])
            sent += 1
            if (why := judge(operation, caller, getattr(who, caller), r)) is not None:
                wrong.append(why)
    assert not wrong, "\n".join(wrong)
    assert sent == len(EXPECTED) * len(ROLES)


async def device_holder(token: str) -> int | None:
    rows = await fetch("SELECT advisor FROM device WHERE token = {}", token)
    return int(rows[0]["advisor"]) if rows else None


async def store_a_state(w: World) -> list[dict[str, Any]]:
    """The advisor's tasks on the member and the member's flags: another store's
    people must leave them as they were."""
    return await fetch(
        "SELECT t.id, t.status, t.due_on, t.assignee, m.do_not_contact, m.wrong_number_at"
        " FROM task t JOIN member m ON m.id = t.member WHERE m.id = {} ORDER BY t.id",
        w.member_id,
    )


async def targets_of_a(w: World) -> list[dict[str, Any]]:
    """Store A's and its advisors' targets: another store's owner must not set them."""
    return await fetch(
        "SELECT t.month, t.subject, t.subject_id, t.new_members, t.points FROM target t"
        " WHERE (t.subject = 'store' AND t.subject_id IN (SELECT id FROM store WHERE code = {}))"
        " OR (t.subject = 'advisor' AND t.subject_id IN"
        " (SELECT a.id FROM advisor a JOIN store s ON s.id = a.store WHERE s.code = {}))"
        " ORDER BY t.month, t.subject, t.subject_id",
        w.a.code,
        w.a.code,
    )


async def test_another_stores_people_do_not_get_this_stores_objects(
    client: httpx.AsyncClient, world: World
) -> None:
    w = world
    before = await store_a_state(w)
    targets_before = await targets_of_a(w)
    device_owner = await device_holder(w.device_token)
    assert device_owner is not None
    wrong: list[str] = []
    for table, callers, of in [
        (OTHER_STORE, w.strangers, "of store B"),
        (OTHER_REGION, {"region": w.other_region}, "of store B's region"),
        (COLLEAGUE, {"advisor": w.colleague}, "of store A, the colleague"),
    ]:
        for operation, (answer, _why) in table.items():
            for caller, headers in callers.items():
                role_may = getattr(EXPECTED[operation], caller) == OK
                expected = answer if role_may else getattr(EXPECTED[operation], caller)
                r = await send(client, w, operation, headers)
                if (why := judge(operation, f"{caller} {of}", expected, r)) is not None:
                    wrong.append(why)
                if operation == "GET /advisor/v1/members" and expected == OK:
                    hits = {m["member_id"] for m in r.json()["members"]}
                    assert (w.member_id in hits) == (of.endswith("colleague")), (caller, of)
                if operation == "GET /v1/contests/{contest_id}/standings" and expected == OK:
                    # Store B is in 华东, the contest's advisors in 华南: names masked.
                    names = [e["advisor_name"] for e in r.json()["advisors"]]
                    assert names and all(n.endswith(f"* ({w.a.code})") for n in names), names
    assert not wrong, "\n".join(wrong)
    assert await store_a_state(w) == before
    assert await targets_of_a(w) == targets_before
    assert await device_holder(w.device_token) == device_owner

    # Nor do store B's advisor's own lists name store A's tasks or members.
    stranger = w.strangers["advisor"]
    synced = await client.get("/advisor/v1/tasks", headers=stranger)
    assert synced.status_code == 200
    assert not {t["task_id"] for t in synced.json()["tasks"]} & {w.outcome_task, w.snooze_task}
    listed = await client.get("/advisor/v1/today", params={"date": "2026-11-27"}, headers=stranger)
    assert listed.status_code == 200
    assert w.member_id not in {c["member"]["member_id"] for c in listed.json()["cards"]}
    # While store A's own advisor and owner see the names in full.
    for caller in ("advisor", "owner"):
        mine = await client.get(f"/v1/contests/{w.contest_id}/standings", headers=w.callers[caller])
        assert any(e["advisor_name"] == "顾问0" for e in mine.json()["advisors"]), mine.text
