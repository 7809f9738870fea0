"""The pages over HTTP: the session cookie, CSRF on every form post, and an owner's
pages scoped to their stores."""

from __future__ import annotations

import re
from datetime import date

import httpx

from incentives import contests
from incentives.schemas import ContestIn, ScoreWeightsIO
from members import accounts
from tests.conftest import PASSWORD, make_shop, receipt, unique_phone


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, phone: str) -> httpx.Response:
    page = await client.get("/web/login")
    return await client.post(
        "/web/login",
        data={"phone": phone, "password": PASSWORD, "_csrf_token": csrf_of(page)},
    )


async def test_sign_in_sets_a_strict_httponly_cookie_and_forms_need_csrf(
    client: httpx.AsyncClient, products: None
) -> None:
    shop = await make_shop()
    phone = unique_phone()
    await accounts.create_user("owner", phone, PASSWORD, store_codes=[shop.code])
    client.cookies.clear()
    r = await client.post("/web/login", data={"phone": phone, "password": PASSWORD})
    assert r.status_code == 403  # no CSRF token
    r = await sign_in(client, phone)
    assert r.status_code == 303 and r.headers["location"] == "/web/owner/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("tt_session="))
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/web" in cookie
    page = await client.get("/web/owner/", follow_redirects=True)
    assert page.status_code == 200 and shop.code in page.text
    assert len(page.content) < 100_000
    r = await client.post("/web/logout", data={"_csrf_token": csrf_of(page)})
    assert r.status_code == 303
    client.cookies.clear()
    r = await client.get("/web/owner/", headers={"Accept": "text/html"})  # a browser
    assert r.status_code in (302, 303, 307) and r.headers["location"] == "/web/login"
    r = await client.get("/web/owner/", headers={"Accept": "application/json"})  # a script
    assert r.status_code == 401


async def test_an_owner_sees_their_league_table_and_not_another_store(
    client: httpx.AsyncClient, products: None
) -> None:
    shop, other = await make_shop(), await make_shop()
    for advisor, yuan in [(shop.advisors[1], 500), (shop.advisors[0], 200)]:
        body = receipt(lines=[("TF1-800", 1, f"{yuan}.00")], advisor_code=advisor)
        assert (
            await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
        ).status_code == 201
    phone = unique_phone()
    await accounts.create_user("owner", phone, PASSWORD, store_codes=[shop.code])
    client.cookies.clear()
    await sign_in(client, phone)
    page = await client.get(f"/web/owner/stores/{shop.code}?board=store")
    assert page.status_code == 200
    league = page.text.split('id="league"', 1)[1]
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td><td>", league)
    assert [r[0] for r in rows] == ["1", "2"] and rows[0][1] == "顾问1"
    # Paired in a running PK contest, the page shows the head-to-head.
    await contests.create_contest(
        ContestIn(
            name="千店牵手PK赛",
            kind="pk",
            subject="store",
            scope="national",
            starts_on=date(2026, 11, 16),
            ends_on=date(2026, 11, 22),
            weights=ScoreWeightsIO(points="1"),
            pairs=[[shop.code, other.code]],
        )
    )
    page = await client.get(f"/web/owner/stores/{shop.code}")
    head_to_head = page.text.split("千店牵手PK赛", 1)[1]
    assert "本店 <b>800.00</b>" in head_to_head and other.code in head_to_head
    assert "领先" in head_to_head
    r = await client.get(f"/web/owner/stores/{other.code}")
    assert r.status_code == 404 and other.code in r.text
    client.cookies.clear()


async def test_bad_form_input_is_a_clear_error_not_a_500(
    client: httpx.AsyncClient, products: None
) -> None:
    shop = await make_shop()
    phone = unique_phone()
    await accounts.create_user("advisor", phone, PASSWORD, advisor_code=shop.advisors[0])
    client.cookies.clear()
    await sign_in(client, phone)
    page = await client.get("/web/advisor/")
    assert page.status_code == 200
    r = await client.post(
        "/web/advisor/tasks/1/outcome",
        data={
            "_csrf_token": csrf_of(page),
            "client_outcome_id": "x1",
            "result": "bogus",
            "recorded_at": "2026-11-20T10:00:00+08:00",
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "result"
    # An advisor reaches neither the owner's nor HQ's pages.
    assert (await client.get(f"/web/owner/stores/{shop.code}")).status_code == 404
    assert (await client.get("/web/hq/")).status_code == 404
    hq_phone = unique_phone()
    await accounts.create_user("hq", hq_phone, PASSWORD)
    client.cookies.clear()
    await sign_in(client, hq_phone)
    page = await client.get("/web/hq/")
    r = await client.post(
        "/web/hq/contests",
        data={
            "_csrf_token": csrf_of(page),
            "name": "x",
            "kind": "league",
            "subject": "advisor",
            "scope": "national",
            "starts_on": "2026-11-01",
            "ends_on": "2026-11-30",
            "points_weight": "lots",
        },
    )
    assert r.status_code == 303 and "error=" in r.headers["location"]
    client.cookies.clear()
