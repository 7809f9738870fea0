"""The pages over HTTP: the session cookie, CSRF on every form post, and an owner's
pages scoped to their stores."""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass
from datetime import date
from functools import partial
from urllib.parse import quote

import httpx

from core.db import fetch, in_write_transaction
from incentives import contests
from incentives.schemas import ContestIn, ScoreWeightsIO, TargetIn
from incentives.targets import save_targets
from members import accounts
from members.activity import take_snapshot
from tests.conftest import FORMULA_1, PASSWORD, Shop, make_shop, receipt, unique_phone
from tests.test_tasks import buy, join


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


# --- insights, targets and the region role -------------------------------------


@dataclass
class Region:
    """A region of its own (so that its figures are this test's alone) with two
    stores, a store elsewhere, and a login of every role."""

    name: str
    big: Shop  # the more revenue of the two
    small: Shop
    other: Shop  # in another region
    phones: dict[str, str]  # role -> phone


async def region_with_figures(client: httpx.AsyncClient) -> Region:
    """Six months of a regular in ``big`` (a repeat purchase each month: RN3), two
    new members there and one in ``small`` this month, activity snapshots at each
    month's end, November targets for both stores and for one advisor of ``big``."""
    suffix = uuid.uuid4().hex[:6]
    name = f"测区{suffix}"
    big, small, other = (
        await make_shop(name),
        await make_shop(name),
        await make_shop(f"外区{suffix}"),
    )
    regular = await join(client, big, big.advisors[0])
    for month in ("06", "07", "08", "09", "10", "11"):
        await buy(client, big, regular, f"2026-{month}-12T10:00:00+08:00")
    for shop, yuan, day in [(big, 500, 17), (big, 300, 18), (small, 100, 18), (other, 200, 18)]:
        body = receipt(
            lines=[(FORMULA_1, 1, f"{yuan}.00")],
            advisor_code=shop.advisors[0],
            purchased_at=f"2026-11-{day}T10:00:00+08:00",
        )
        r = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
        assert r.status_code == 201, r.text
    for day in ["2026-06-30", "2026-07-31", "2026-08-31", "2026-09-30", "2026-10-31", "2026-11-19"]:
        await in_write_transaction(partial(take_snapshot, date.fromisoformat(day), "Asia/Shanghai"))
    lines = [
        TargetIn("store", big.code, 4, 2000),
        TargetIn("store", small.code, 2, 1000),
        TargetIn("advisor", big.advisors[0], 2, 800),
    ]
    report = await save_targets("2026-11", list(enumerate(lines, start=1)), [], "hq")
    assert report.saved == 3, report
    phones = {role: unique_phone() for role in ("hq", "region", "owner", "advisor")}
    await accounts.create_user("hq", phones["hq"], PASSWORD)
    await accounts.create_user("region", phones["region"], PASSWORD, region=name)
    await accounts.create_user("owner", phones["owner"], PASSWORD, store_codes=[big.code])
    await accounts.create_user("advisor", phones["advisor"], PASSWORD, advisor_code=big.advisors[0])
    return Region(name, big, small, other, phones)


async def signed_in(client: httpx.AsyncClient, phone: str) -> str:
    """Signs in afresh; returns where the sign-in sends this login."""
    client.cookies.clear()
    r = await sign_in(client, phone)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def csv_rows(r: httpx.Response) -> list[list[str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.content.startswith("\ufeff".encode())  # Excel reads the Chinese
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


def codes_in(page: str, table: str) -> list[str]:
    """The store codes a page's table lists, in order."""
    body = page.split(f'id="{table}-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<a href="/web/owner/stores/([A-Z0-9]+)\?', body)


async def test_each_role_sees_the_insight_pages_that_are_its_own(
    client: httpx.AsyncClient, products: None
) -> None:
    r = await region_with_figures(client)
    # An advisor: the month's target on the phone page, and no insight page.
    assert await signed_in(client, r.phones["advisor"]) == "/web/advisor/"
    page = (await client.get("/web/advisor/")).text
    assert 'role="progressbar" aria-label="新会员"' in page
    assert 'aria-valuetext="实际 2 / 目标 2(100%)"' in page
    assert 'aria-valuetext="实际 1,158 / 目标 800(144%)"' in page
    for path in ("/web/hq/insights", "/web/region/", "/web/hq/insights.csv?table=regions"):
        assert (await client.get(path)).status_code == 404, path
    # An owner: the store's target and each advisor's; one without a target of their
    # own has the store's share, marked so.
    await signed_in(client, r.phones["owner"])
    page = (await client.get(f"/web/owner/stores/{r.big.code}")).text
    assert 'aria-valuetext="实际 2 / 目标 4(50%)"' in page
    advisors = page.split('id="advisor-targets"', 1)[1].split("</table>", 1)[0]
    assert "2 / 2(100%)" in advisors and "0 / 2(0%)" in advisors and "按门店均分" in advisors
    for path in ("/web/hq/insights", "/web/region/", f"/web/region/?region={r.name}"):
        assert (await client.get(path)).status_code == 404, path
    # The region: lands on its page, sees its stores, opens their pages and no others.
    assert await signed_in(client, r.phones["region"]) == "/web/region/"
    page = (await client.get("/web/region/")).text
    assert r.name in page and r.other.code not in page
    assert sorted(codes_in(page, "stores")) == sorted([r.big.code, r.small.code])
    store = await client.get(f"/web/owner/stores/{r.big.code}")
    assert store.status_code == 200 and "全国排名" not in store.text
    assert "board=national" not in store.text
    for path in (
        f"/web/owner/stores/{r.other.code}",
        f"/web/region/?region=外区{r.name[2:]}",
        f"/web/region/insights.csv?table=stores&region=外区{r.name[2:]}",
        "/web/hq/insights",
        "/web/hq/",
    ):
        assert (await client.get(path)).status_code == 404, path
    # HQ: the chain by region, each region's page, and no region made up.
    await signed_in(client, r.phones["hq"])
    page = (await client.get("/web/hq/insights")).text
    assert f'href="/web/region/?region={quote(r.name)}&amp;period=2026-11"' in page
    assert (await client.get(f"/web/region/?region={r.name}")).status_code == 200
    assert (await client.get("/web/region/?region=没有这个区")).status_code == 404
    r2 = await client.get("/web/region/")
    assert r2.status_code in (302, 303, 307) and r2.headers["location"] == "/web/hq/insights"
    home = (await client.get("/web/hq/")).text
    assert 'href="/web/hq/insights"' in home and r.name in home
    client.cookies.clear()


async def test_every_insight_table_downloads_as_csv(
    client: httpx.AsyncClient, products: None
) -> None:
    r = await region_with_figures(client)
    await signed_in(client, r.phones["hq"])
    rows = csv_rows(await client.get("/web/hq/insights.csv?table=regions&period=2026-11"))
    assert rows[0][:5] == ["区域", "会员", "新会员", "近3月活跃", "近12月活跃"]
    line = dict(zip(rows[0], next(row for row in rows if row[0] == r.name), strict=True))
    assert (line["新会员"], line["营业额(元)"], line["RN3"]) == ("3", "1258.00", "0.2846")
    for table in ("kinds", "campaigns", "targets", "trend"):
        assert len(csv_rows(await client.get(f"/web/hq/insights.csv?table={table}"))) >= 1
    rows = csv_rows(await client.get(f"/web/region/insights.csv?table=targets&region={r.name}"))
    assert rows[0] == [
        "门店",
        "名称",
        "新会员目标",
        "新会员实际",
        "新会员达成率",
        "积分目标",
        "积分实际",
        "积分达成率",
    ]
    # By store code, as the page lists them.
    assert rows[1:] == sorted(
        [
            [r.big.code, f"测试店{r.big.code}", "4", "2", "0.5000", "2000", "1158", "0.5790"],
            [r.small.code, f"测试店{r.small.code}", "2", "1", "0.5000", "1000", "100", "0.1000"],
        ]
    )
    trend = csv_rows(await client.get(f"/web/region/insights.csv?table=trend&region={r.name}"))
    assert [row[0] for row in trend[1:]] == [f"2026-{m:02d}" for m in range(6, 12)]
    # Members at each month's end (yesterday for this month); a page's own month reads
    # the chain's latest snapshot, which other tests may have taken for their days.
    assert [row[1] for row in trend[1:]] == ["1", "1", "1", "1", "1", "4"]
    # The region's own login: its stores sorted as asked, its league table.
    await signed_in(client, r.phones["region"])
    rows = csv_rows(await client.get("/web/region/insights.csv?table=stores&sort=revenue&dir=asc"))
    assert [row[0] for row in rows[1:]] == [r.small.code, r.big.code]
    rows = csv_rows(await client.get("/web/region/insights.csv?table=league"))
    assert rows[0][:3] == ["名次", "门店", "名称"]
    assert {row[1] for row in rows[1:]} == {r.big.code, r.small.code}
    for table in ("regions", "nothing"):
        r404 = await client.get(f"/web/region/insights.csv?table={table}")
        assert r404.status_code == 404, table
    client.cookies.clear()


CONSOLE = (
    "/web/hq/stores",
    "/web/hq/advisors",
    "/web/hq/products",
    "/web/hq/logins",
    "/web/hq/keys",
    "/web/hq/campaigns",
    "/web/hq/imports",
    "/web/hq/audit",
    "/web/hq/audit.csv",
)


async def test_hq_console_is_hqs_alone_and_its_forms_need_csrf(
    client: httpx.AsyncClient, products: None
) -> None:
    shop = await make_shop()
    client.cookies.clear()
    for path in CONSOLE:
        r = await client.get(path, headers={"Accept": "text/html"})
        assert r.status_code in (302, 303, 307) and r.headers["location"] == "/web/login", path
    owner = unique_phone()
    await accounts.create_user("owner", owner, PASSWORD, store_codes=[shop.code])
    await sign_in(client, owner)
    for path in CONSOLE:
        assert (await client.get(path)).status_code == 404, path
    hq = unique_phone()
    await accounts.create_user("hq", hq, PASSWORD)
    client.cookies.clear()
    await sign_in(client, hq)
    for path in CONSOLE:
        assert (await client.get(path)).status_code == 200, path
    # A form post without the CSRF token changes nothing.
    r = await client.post("/web/hq/keys", data={"store": shop.code})
    assert r.status_code == 403
    page = await client.get("/web/hq/keys")
    r = await client.post("/web/hq/keys", data={"store": "NOSUCH", "_csrf_token": csrf_of(page)})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    # A bad campaign segment is said on the page, not a 500.
    r = await client.get("/web/hq/campaigns", params={"age_from": "x", "age_to": "3"})
    assert r.status_code == 200 and "宝宝月龄" in r.text


async def test_hq_console_switches_a_store_to_o2o_through_the_registrys_rule(
    client: httpx.AsyncClient,
) -> None:
    hq = unique_phone()
    await accounts.create_user("hq", hq, PASSWORD)
    await signed_in(client, hq)
    code = f"S{uuid.uuid4().hex[:8].upper()}"
    page = await client.get("/web/hq/stores")
    assert 'name="o2o"' in page.text and "o2o-slot" not in page.text
    form = {"code": code, "name": "接单店", "region": "华南", "_csrf_token": csrf_of(page)}

    # Taking orders without a position: the field is named on the page, nothing saved.
    r = await client.post("/web/hq/stores", data={**form, "o2o": "on"})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    shown = await client.get(r.headers["location"])
    assert shown.status_code == 200
    assert "latitude: is required for a store taking O2O orders" in shown.text
    assert await fetch("SELECT id FROM store WHERE code = {}", code) == []

    placed = {**form, "latitude": "23.1", "longitude": "113.3"}
    r = await client.post("/web/hq/stores", data={**placed, "o2o": "on"})
    assert r.status_code == 303 and "error=" not in r.headers["location"]
    (row,) = await fetch("SELECT o2o FROM store WHERE code = {}", code)
    assert row["o2o"]
    listed = (await client.get(f"/web/hq/stores?q={code}")).text
    assert "<td>接单</td>" in listed
    edit = (await client.get(f"/web/hq/stores?edit={code}")).text
    assert re.search(r'name="o2o" checked', edit)

    # Unticked, saved again: off, and the trail has the switch both ways.
    r = await client.post("/web/hq/stores", data=placed)
    (row,) = await fetch("SELECT o2o FROM store WHERE code = {}", code)
    assert not row["o2o"] and "不接单" in (await client.get(f"/web/hq/stores?q={code}")).text
    trail = await fetch(
        "SELECT who, action, after FROM audit_entry WHERE entity = 'store' AND key = {}"
        " ORDER BY id",
        code,
    )
    assert [(t["who"], t["action"]) for t in trail] == [
        (f"hq:{hq}", "create"),
        (f"hq:{hq}", "update"),
    ]
    assert ['"o2o":true' in t["after"] for t in trail] == [True, False]
    client.cookies.clear()


async def test_hq_console_issues_and_revokes_channel_keys(client: httpx.AsyncClient) -> None:
    owner = unique_phone()
    shop = await make_shop()
    await accounts.create_user("owner", owner, PASSWORD, store_codes=[shop.code])
    await signed_in(client, owner)
    name = f"网店{uuid.uuid4().hex[:6]}"
    token = csrf_of(await client.get("/web/owner/", follow_redirects=True))
    r = await client.post("/web/hq/channel-keys", data={"name": name, "_csrf_token": token})
    assert r.status_code == 404
    assert await fetch("SELECT id FROM channel_key WHERE name = {}", name) == []

    hq = unique_phone()
    await accounts.create_user("hq", hq, PASSWORD)
    await signed_in(client, hq)
    page = await client.get("/web/hq/keys")
    assert 'id="channel-keys"' in page.text and "发放渠道密钥" in page.text
    r = await client.post("/web/hq/channel-keys", data={"name": name, "_csrf_token": csrf_of(page)})
    assert r.status_code == 200
    key = re.search(r'id="new-channel-key">.*?<code>(ttch_[^<]+)</code>', r.text, re.S)
    assert key, r.text
    headers = {"X-API-Key": key.group(1)}
    assert (await client.get("/o2o/v1/orders/none", headers=headers)).status_code == 404
    (row,) = await fetch("SELECT id FROM channel_key WHERE name = {}", name)
    listed = (await client.get("/web/hq/keys")).text
    assert name in listed and key.group(1) not in listed  # shown once only
    assert f'action="/web/hq/channel-keys/{row["id"]}/revoke"' in listed

    r = await client.post(
        f"/web/hq/channel-keys/{row['id']}/revoke", data={"_csrf_token": csrf_of(page)}
    )
    assert r.status_code == 303 and "error=" not in r.headers["location"]
    assert (await client.get("/o2o/v1/orders/none", headers=headers)).status_code == 401
    listed = (await client.get("/web/hq/keys")).text
    assert f'action="/web/hq/channel-keys/{row["id"]}/revoke"' not in listed
    # Once each on the trail, under this login; a second revoke and a bad name add none.
    await client.post(
        f"/web/hq/channel-keys/{row['id']}/revoke", data={"_csrf_token": csrf_of(page)}
    )
    r = await client.post("/web/hq/channel-keys", data={"name": " ", "_csrf_token": csrf_of(page)})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    r = await client.post(
        "/web/hq/channel-keys/999999999/revoke", data={"_csrf_token": csrf_of(page)}
    )
    assert r.status_code == 303 and "error=" in r.headers["location"]
    trail = await fetch(
        "SELECT who, action FROM audit_entry WHERE entity = 'channel_key' AND key = {} ORDER BY id",
        key.group(1)[:12],
    )
    assert [(t["who"], t["action"]) for t in trail] == [
        (f"hq:{hq}", "create"),
        (f"hq:{hq}", "revoke"),
    ]
    client.cookies.clear()
