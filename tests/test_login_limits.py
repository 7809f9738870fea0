"""Sign-in is rate limited per address and per phone; a locked-out phone gets a 429
with Retry-After, and other phones are not held up by it."""

from __future__ import annotations

import dataclasses

import httpx

from advisor_api.app import create_app
from members import accounts
from tests.conftest import PASSWORD, TEST_SETTINGS, unique_phone


async def test_a_phone_is_locked_out_after_five_wrong_passwords(client: httpx.AsyncClient) -> None:
    phone, other = unique_phone(), unique_phone()
    for p in (phone, other):
        await accounts.create_user("hq", p, PASSWORD)
    for _ in range(5):
        r = await client.post("/auth/login", json={"phone": phone, "password": "wrong-password"})
        assert r.status_code == 401
    locked = await client.post("/auth/login", json={"phone": phone, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.headers["content-type"] == "application/problem+json"
    assert 0 < int(locked.headers["retry-after"]) <= 900
    # The same phone written another way is the same phone.
    spaced = f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
    assert (
        await client.post("/auth/login", json={"phone": spaced, "password": PASSWORD})
    ).status_code == 429
    assert (
        await client.post("/auth/login", json={"phone": other, "password": PASSWORD})
    ).status_code == 200


async def test_an_address_is_limited_to_so_many_sign_ins_a_minute() -> None:
    app = create_app(
        dataclasses.replace(TEST_SETTINGS, login_per_minute_per_address=3), scheduler=False
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        answers = [
            (
                await c.post("/auth/login", json={"phone": unique_phone(), "password": "x"})
            ).status_code
            for _ in range(4)
        ]
        assert answers == [401, 401, 401, 429]
        limited = await c.post("/auth/login", json={"phone": unique_phone(), "password": "x"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert (await c.get("/health")).status_code == 200  # other paths are not limited
