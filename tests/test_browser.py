"""The pages in a real headless Chromium (Debian's, driven by Playwright), against a
real server on this test run's database. Screenshots land in a temporary folder, or
in docs/screenshots/ with ``TIANTIAN_SCREENSHOTS=refresh`` (``make screenshots``),
so that ``make test`` leaves the checkout as it found it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.db import fetch
from members import accounts
from tests.conftest import (
    DATABASE_URL,
    PASSWORD,
    TEST_NOW,
    Shop,
    login,
    make_shop,
    receipt,
    unique_phone,
)
from tests.test_web import region_with_figures

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parent.parent
SHOTS = (
    REPO / "docs" / "screenshots"
    if os.environ.get("TIANTIAN_SCREENSHOTS") == "refresh"
    else Path(tempfile.mkdtemp(prefix="tiantian-shots-"))
)
SIZES = {"phone": (390, 844), "laptop": (1280, 800)}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "TIANTIAN_NOW": TEST_NOW,
        "TIANTIAN_LIST_CACHE_SECONDS": "0",
        "TIANTIAN_TABLE_CACHE_SECONDS": "0",
        "TIANTIAN_LOGIN_CACHE_SECONDS": "0",
        "TIANTIAN_LOGINS_PER_MINUTE": "100000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "advisor_api.cli", "serve", "--port", str(port), "--no-scheduler"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def page_for(browser: Any, base: str, phone: str, size: str = "phone") -> Any:
    width, height = SIZES[size]
    context = await browser.new_context(viewport={"width": width, "height": height}, base_url=base)
    page = await context.new_page()
    await page.goto("/web/login")
    await page.get_by_label("手机号").fill(phone)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_load_state("networkidle")
    return page


async def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=False)


async def test_owner_sees_the_league_table_in_order_and_not_another_store(
    client: httpx.AsyncClient, products: None, server: str, browser: Any
) -> None:
    shop, other = await make_shop(), await make_shop()
    for advisor, yuan in [(shop.advisors[1], 600), (shop.advisors[0], 300)]:
        body = receipt(lines=[("TF1-800", 1, f"{yuan}.00")], advisor_code=advisor)
        assert (
            await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
        ).status_code == 201
    phone = unique_phone()
    await accounts.create_user("owner", phone, PASSWORD, store_codes=[shop.code])
    page = await page_for(browser, server, phone, "laptop")
    assert page.url.endswith(f"/web/owner/stores/{shop.code}")
    rows = page.locator("#league tbody tr")
    assert await rows.count() == 2
    assert (await rows.nth(0).inner_text()).split("\t")[:2] == ["1", "顾问1"]
    assert (await rows.nth(1).inner_text()).split("\t")[:2] == ["2", "顾问0"]
    await page.set_viewport_size({"width": 360, "height": 740})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await shoot(page, "owner-store")
    response = await page.goto(f"/web/owner/stores/{other.code}")
    assert response.status == 404
    assert other.code in await page.content() and "顾问" not in await page.content()
    await page.context.close()


SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = ["芳", "静", "敏", "丽", "婷", "娜", "霞", "燕"]
# The page-weight and first-paint figures of one load of the day's list, read with
# the Performance API in the page itself.
FIGURES = """() => new Promise((done) => {
  const nav = performance.getEntriesByType("navigation")[0];
  const js = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/app.js"));
  // The first paint may come after the load event: wait for its entry.
  new PerformanceObserver((seen) => {
    const first = seen.getEntries().find((e) => e.name === "first-contentful-paint");
    if (first) done({html: nav.decodedBodySize, html_wire: nav.transferSize,
                     script: js ? js.decodedBodySize : null, first_paint: first.startTime});
  }).observe({type: "paint", buffered: true});
})"""
# Every visible control at least 44×44 px, and every control named.
TOUCH = """() => {
  const small = [], unnamed = [];
  for (const el of document.querySelectorAll(
      "a[href], button, input:not([type=hidden]), summary, select, textarea")) {
    const name = el.getAttribute("aria-label") || (el.labels && el.labels.length
      ? el.labels[0].textContent : "") || el.textContent || el.title || "";
    if (!name.trim()) unnamed.push(el.outerHTML.slice(0, 80));
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;  // in a closed card
    if (r.width < 44 || r.height < 44)
      small.push(`${el.outerHTML.slice(0, 60)} ${Math.round(r.width)}x${Math.round(r.height)}`);
  }
  return {small, unnamed};
}"""


async def fits_360(page: Any) -> bool:
    await page.set_viewport_size({"width": 360, "height": 740})
    return bool(await page.evaluate("document.documentElement.scrollWidth <= 360"))


async def counts(page: Any) -> dict[str, int]:
    found = {}
    for key in ("urgent", "overdue", "today", "done"):
        found[key] = int(await page.locator(f"#h-{key} .n").inner_text())
    return found


@dataclass
class Day:
    """Forty members of a store with a call each today, and two more."""

    shop: Shop
    phones: list[str]
    names: list[str]
    quiet_id: int  # a member of the store with nothing to do today
    twin: str  # another store's member: the same name and last four digits as no. 12


async def forty_cards(client: httpx.AsyncClient) -> Day:
    shop, other = await make_shop(), await make_shop()
    advisor = shop.advisors[0]
    # Forty members who bought: ten follow-ups overdue (bought 11-15), thirty due today.
    phones, names = [], []
    for i in range(40):
        phone, name = unique_phone(), SURNAMES[i % 10] + GIVEN[i % 8] + str(i)
        birth = f"2026-09-{1 + i % 20:02d}" if i % 2 else f"2026-02-{1 + i % 20:02d}"
        r = await client.post(
            "/pos/v1/members",
            json={
                "phone": phone,
                "name": name,
                "advisor_code": advisor,
                "babies": [{"name": "宝宝", "birth_date": birth}],
            },
            headers=shop.pos,
        )
        assert r.status_code == 201, r.text
        bought = "2026-11-15" if i < 10 else "2026-11-17"
        body = receipt(phone=phone, purchased_at=f"{bought}T10:00:00+08:00")
        assert (
            await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
        ).status_code == 201
        phones.append(phone)
        names.append(name)
    # A member of the store with nothing to do today (so not cached), and one of
    # another store with the same name and the same last four digits.
    quiet = unique_phone()
    r = await client.post(
        "/pos/v1/members", json={"phone": quiet, "advisor_code": advisor}, headers=shop.pos
    )
    quiet_id = r.json()["member_id"]
    twin = f"136{int(time.time() * 1000) % 10**4:04d}{phones[12][-4:]}"
    r = await client.post(
        "/pos/v1/members",
        json={"phone": twin, "name": names[12], "advisor_code": other.advisors[0]},
        headers=other.pos,
    )
    assert r.status_code == 201, r.text
    return Day(shop, phones, names, quiet_id, twin)


async def cold_load(browser: Any, server: str, signed_in: Any) -> dict[str, float]:
    """Page weight and first paint of a fresh load of the list, with the service
    worker kept out of it (the cold case a phone meets first)."""
    cold = await browser.new_context(
        viewport={"width": 390, "height": 844},
        base_url=server,
        storage_state=await signed_in.context.storage_state(),
        service_workers="block",
    )
    fresh = await cold.new_page()
    await fresh.goto("/web/advisor/", wait_until="load")
    figures: dict[str, float] = await fresh.evaluate(FIGURES)
    assert await fresh.locator("details.card").count() == 40
    await cold.close()
    return figures


async def test_advisor_works_the_day_on_the_phone_online_and_offline(
    client: httpx.AsyncClient, products: None, server: str, browser: Any
) -> None:
    day = await forty_cards(client)
    shop, phones, names, quiet_id, twin = day.shop, day.phones, day.names, day.quiet_id, day.twin
    advisor = shop.advisors[0]
    login_phone = unique_phone()
    await accounts.create_user("advisor", login_phone, PASSWORD, advisor_code=advisor)
    page = await page_for(browser, server, login_phone)
    assert page.url.endswith("/web/advisor/")

    figures = await cold_load(browser, server, page)
    print(
        f"\nadvisor list, 40 cards: HTML {figures['html'] / 1024:.1f} KB"
        f" ({figures['html_wire'] / 1024:.1f} KB on the wire),"
        f" script {figures['script'] / 1024:.1f} KB,"
        f" first paint {figures['first_paint']:.0f} ms"
    )
    assert figures["html"] <= 60 * 1024 and 0 < figures["script"] <= 10 * 1024
    assert figures["first_paint"] < 1000

    # The sections and their counts; the page fits 360 px; every control is named and
    # a thumb's size (with a card open).
    assert await counts(page) == {"urgent": 0, "overdue": 10, "today": 30, "done": 0}
    assert await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    await page.set_viewport_size({"width": 360, "height": 740})
    first = page.locator("#s-overdue details.card").first
    await first.locator("summary").click()
    assert await first.get_attribute("open") is not None
    assert await first.get_by_role("button", name="未接通").is_visible()
    assert await fits_360(page)
    checked = await page.evaluate(TOUCH)
    assert checked == {"small": [], "unnamed": []}, checked
    await shoot(page, "advisor-today")
    await first.locator("summary").click()
    assert await first.get_attribute("open") is None
    assert not await first.get_by_role("button", name="未接通").is_visible()
    # The members on the list are cached for offline.
    await page.locator("body[data-cached='40']").wait_for(state="attached")

    # Online: the member asks for a delivery. The card moves to 已完成 at once; the
    # delivery lands in 紧急 with the next load.
    card = page.locator("#s-today details.card").first
    delivery_member = await card.get_attribute("data-member")
    online_task = int((await card.get_attribute("id")).split("-")[1])
    await card.locator("summary").click()
    async with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/tasks/{online_task}/outcome")
    ) as sent:
        await card.get_by_role("button", name="要送货").click()
    assert (await sent.value).status == 201
    assert await counts(page) == {"urgent": 0, "overdue": 10, "today": 29, "done": 1}
    assert "要送货" in await page.locator("#done-list").inner_text()
    await page.locator("#queue[data-waiting='0']").wait_for(state="attached")
    await page.reload()
    assert await counts(page) == {"urgent": 1, "overdue": 10, "today": 29, "done": 1}
    urgent = page.locator("#s-urgent details.card")
    assert await urgent.get_attribute("data-member") == delivery_member
    assert "送货" in await urgent.locator("summary").inner_text()

    # Offline: a call is queued and its card still moves; a member on the list opens
    # from the cache (one not on it does not); a call from the member page is queued too.
    await page.context.set_offline(True)
    late = page.locator("#s-overdue details.card").first
    offline_task = int((await late.get_attribute("id")).split("-")[1])
    await late.locator("summary").click()
    await late.get_by_role("button", name="未接通").click()
    await page.locator("#queue[data-waiting='1']").wait_for(state="attached")
    assert await counts(page) == {"urgent": 1, "overdue": 9, "today": 29, "done": 2}
    assert "1 条结果等待联网同步" in await page.locator("#queue").inner_text()
    await page.evaluate("window.scrollTo(0, 0)")
    await shoot(page, "advisor-offline")
    target = page.locator("#s-today details.card").first
    member_id = await target.get_attribute("data-member")
    member_task = int((await target.get_attribute("id")).split("-")[1])
    member_name = await target.locator("summary b").inner_text()
    await page.goto(f"/web/advisor/members/{member_id}")
    assert await page.locator("#m-name").inner_text() == member_name
    assert await page.locator("#babies li").count() == 1
    assert "奶粉" in await page.locator("#runouts").inner_text()
    await page.locator(f"#open #task-{member_task}").get_by_role("button", name="已联系").click()
    await page.locator("#queue[data-waiting='2']").wait_for(state="attached")
    assert await fits_360(page)
    assert await page.evaluate(TOUCH) == {"small": [], "unnamed": []}
    await page.evaluate("window.scrollTo(0, 0)")
    await shoot(page, "advisor-member")
    # The cached list still shows both calls done.
    await page.goto("/web/advisor/")
    await page.locator("#queue[data-waiting='2']").wait_for(state="attached")
    assert (await counts(page))["done"] == 3
    # (A member not on the list was never cached: offline, their page does not open.)
    other_tab = await page.context.new_page()
    with pytest.raises(Exception, match="ERR_"):
        await other_tab.goto(f"/web/advisor/members/{quiet_id}")
    await other_tab.close()
    await page.locator("#queue[data-waiting='2']").wait_for(state="attached")
    assert (await counts(page))["done"] == 3
    # Back online: the queue drains, each call recorded once.
    await page.context.set_offline(False)
    await page.evaluate("window.dispatchEvent(new Event('online'))")
    await page.locator("#queue[data-waiting='0']").wait_for(state="attached")
    for task_id, result in [
        (online_task, "delivery_requested"),
        (offline_task, "no_answer"),
        (member_task, "reached"),
    ]:
        rows = await fetch("SELECT result FROM outcome WHERE task = {}", task_id)
        assert [r["result"] for r in rows] == [result], task_id
        (task,) = await fetch("SELECT status FROM task WHERE id = {}", task_id)
        assert task["status"] == "done"
    await page.reload()
    assert await counts(page) == {"urgent": 1, "overdue": 9, "today": 28, "done": 3}

    # Search by the last four digits: the store's member, not the other store's twin.
    await page.get_by_label("找会员").fill(phones[12][-4:])
    await page.get_by_role("button", name="查找").click()
    await page.wait_for_load_state("networkidle")
    hits = page.locator("#hits a")
    assert await hits.count() == 1
    assert names[12] in await hits.inner_text() and twin[-4:] in await hits.inner_text()
    assert await fits_360(page)
    assert await page.evaluate(TOUCH) == {"small": [], "unnamed": []}
    await shoot(page, "advisor-search")
    await hits.click()
    await page.wait_for_load_state("networkidle")
    assert await page.locator("#m-name").inner_text() == names[12]
    assert await page.locator(f"a[href='tel:{phones[12]}']").count() == 1
    await page.context.close()


async def test_sign_in_page_lists_nothing_secret_and_fits_a_phone(
    server: str, browser: Any
) -> None:
    context = await browser.new_context(viewport={"width": 360, "height": 740}, base_url=server)
    page = await context.new_page()
    response = await page.goto("/")
    assert page.url.endswith("/web/login") and response.status == 200
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
    await shoot(page, "sign-in")
    await context.close()


async def test_hq_edits_the_playbook_runs_a_contest_and_downloads_the_bonus_csv(
    client: httpx.AsyncClient, products: None, server: str, browser: Any
) -> None:
    phone = unique_phone()
    await accounts.create_user("hq", phone, PASSWORD)
    page = await page_for(browser, server, phone, "laptop")
    assert page.url.endswith("/web/hq/")
    await shoot(page, "hq")
    # The delivery rule: a new script, saved through the form.
    form = page.locator("form[action='/web/hq/playbook/delivery']")
    await form.get_by_label("话术").fill("您好,送货上门前跟您确认一下地址。")
    await form.get_by_role("button", name="保存").click()
    await page.wait_for_load_state("networkidle")
    (rule,) = await fetch("SELECT script, params FROM playbook_rule WHERE kind = 'delivery'")
    assert rule["script"] == "您好,送货上门前跟您确认一下地址。" and "urgent" in str(rule["params"])
    # A league contest from the form opens on its standings.
    contest = page.locator("form[action='/web/hq/contests']")
    await contest.get_by_label("名称").fill("十一月先锋赛")
    await contest.get_by_label("开始").fill("2026-11-01")
    await contest.get_by_label("结束").fill("2026-11-30")
    await contest.get_by_role("button", name="创建竞赛").click()
    await page.wait_for_load_state("networkidle")
    assert "/web/hq/contests/" in page.url and "十一月先锋赛" in await page.content()
    await shoot(page, "hq-contest")
    # The bonus CSV, with the session cookie.
    response = await page.request.get(f"{server}/web/hq/bonus/2026-11.csv")
    assert response.status == 200
    assert (await response.body()).startswith("\ufeff月份".encode())
    await page.context.close()


async def test_hq_and_a_region_read_their_insights_sort_them_and_download_them(
    client: httpx.AsyncClient, products: None, server: str, browser: Any
) -> None:
    r = await region_with_figures(client)
    # One call made and answered: the funnel goes on past 应跟进.
    who = await login(client, r.phones["advisor"])
    cards = (await client.get("/advisor/v1/today?date=2026-11-20", headers=who)).json()["cards"]
    task = next(t for card in cards for t in card["tasks"] if t["kind"] == "followup_3d")
    done = await client.post(
        f"/advisor/v1/tasks/{task['task_id']}/outcome",
        json={
            "client_outcome_id": unique_phone(),
            "channel": "phone",
            "result": "reached",
            "recorded_at": "2026-11-20T11:00:00+08:00",
        },
        headers=who,
    )
    assert done.status_code == 201, done.text

    page = await page_for(browser, server, r.phones["hq"], "laptop")
    await page.get_by_role("link", name="数据洞察").first.click()
    await page.wait_for_load_state("networkidle")
    assert page.url.endswith("/web/hq/insights")
    # The funnel: a chart for each kind with tasks due this month, a bar for each stage.
    kinds = page.locator("#funnel figure.funnel-kind")
    assert await kinds.count() >= 3
    for i in range(await kinds.count()):
        assert await kinds.nth(i).locator("svg rect.bar").count() == 6
    followup = page.locator("#funnel figure[data-kind='followup_3d']")
    assert (await followup.locator("figcaption").inner_text()).startswith("浇水施肥")
    # Six months of active members, two bars each; RN3 and stage-up retention as lines.
    assert await page.locator("#trend figure.months rect.bar").count() == 12
    assert await page.locator("#trend figure.shares polyline").count() == 2
    # The region's row: its figures, read as people write them.
    row = page.locator("#regions-table tbody tr", has_text=r.name)
    cells = (await row.inner_text()).split("\t")
    assert (cells[0], cells[2]) == (r.name, "3") and "1,258.00" in cells and "28.4%" in cells
    target = page.locator("#targets-table tbody tr", has_text=r.name)
    bar = target.get_by_role("progressbar", name="新会员")
    assert await bar.get_attribute("aria-valuetext") == "实际 3 / 目标 6(50%)"
    await shoot(page, "hq-insights")
    # The table as CSV, through its link.
    async with page.expect_download() as fetched:
        await page.locator("#regions a.csv").click()
    saved = Path(await (await fetched.value).path())
    body = await asyncio.to_thread(saved.read_bytes)
    assert body.startswith("\ufeff区域,会员,新会员".encode()) and r.name.encode() in body
    # One level down: the region's page.
    await row.get_by_role("link", name=r.name).click()
    await page.wait_for_load_state("networkidle")
    assert "/web/region/" in page.url and r.name in await page.locator("h1").inner_text()
    await page.context.close()

    # The region's own login lands on its page, sorts its stores by any figure, and
    # opens its stores' pages but no other region's.
    page = await page_for(browser, server, r.phones["region"], "laptop")
    assert page.url.endswith("/web/region/")
    stores = page.locator("#stores-table tbody th a")
    header = page.locator("#stores-table thead th", has_text="营业额")
    await header.get_by_role("link").click()
    await page.wait_for_load_state("networkidle")
    assert "sort=revenue" in page.url and await header.get_attribute("aria-sort") == "descending"
    assert await stores.all_inner_texts() == [r.big.code, r.small.code]
    await header.get_by_role("link").click()
    await page.wait_for_load_state("networkidle")
    assert await header.get_attribute("aria-sort") == "ascending"
    assert await stores.all_inner_texts() == [r.small.code, r.big.code]
    league = page.locator("#league-table tbody tr")
    assert await league.count() == 2
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.evaluate("window.scrollTo(0, 0)")  # the sort links jump to their table
    await shoot(page, "region-insights")
    await stores.first.click()
    await page.wait_for_load_state("networkidle")
    assert f"/web/owner/stores/{r.small.code}" in page.url
    assert await page.get_by_role("progressbar", name="新会员").count() >= 1
    response = await page.goto(f"/web/owner/stores/{r.other.code}")
    assert response.status == 404
    await page.context.close()

    # The advisor's phone page: the month's target, read at a glance.
    page = await page_for(browser, server, r.phones["advisor"])
    bars = page.locator("#my-target ~ .bars").get_by_role("progressbar")
    assert await bars.count() == 2
    assert await bars.nth(0).get_attribute("aria-valuetext") == "实际 2 / 目标 2(100%)"
    assert "实际 1,158 / 目标 800(144%)" in await bars.nth(1).inner_text()
    await page.context.close()


async def test_hq_console_keeps_the_registry_logins_keys_campaigns_imports_and_audit(
    client: httpx.AsyncClient, products: None, server: str, browser: Any
) -> None:
    phone = unique_phone()
    await accounts.create_user("hq", phone, PASSWORD)
    shop = await make_shop()
    page = await page_for(browser, server, phone, "laptop")

    # A store edited through its form: the change is on the trail under this login.
    await page.goto(f"/web/hq/stores?q={shop.code}")
    await page.get_by_role("link", name="编辑").first.click()
    await page.get_by_label("名称", exact=True).fill("控制台改名店")
    await page.get_by_role("button", name="保存门店").click()
    await page.wait_for_load_state("networkidle")
    assert "控制台改名店" in await page.content()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280
    # O2O switched on: without a position the page names the field; with one, it lists.
    await page.goto(f"/web/hq/stores?edit={shop.code}")
    await page.get_by_label("O2O 接单", exact=False).check()
    await page.get_by_role("button", name="保存门店").click()
    await page.wait_for_load_state("networkidle")
    assert "latitude" in await page.get_by_role("alert").inner_text()
    await page.get_by_label("纬度", exact=True).fill("23.1")
    await page.get_by_label("经度", exact=True).fill("113.3")
    await page.get_by_label("O2O 接单", exact=False).check()
    await page.get_by_role("button", name="保存门店").click()
    await page.wait_for_load_state("networkidle")
    row = page.get_by_role("row").filter(has_text=shop.code)
    assert "接单" in await row.inner_text() and "不接单" not in await row.inner_text()
    await shoot(page, "hq-stores")

    # An advisor's page previews who takes their members before a move.
    member = unique_phone()
    r = await client.post(
        "/pos/v1/purchases",
        json=receipt(phone=member, advisor_code=shop.advisors[0]),
        headers=shop.pos,
    )
    assert r.status_code == 201
    await page.goto(f"/web/hq/advisors?edit={shop.advisors[0]}")
    preview = await page.locator("#handover").inner_text()
    assert "1 位会员" in preview and shop.advisors[1] in preview
    await shoot(page, "hq-advisors")

    await page.goto("/web/hq/products")
    assert "TF1-800" in await page.content()

    # A login made, its password reset, then deactivated.
    owner = unique_phone()
    await page.goto("/web/hq/logins")
    await page.get_by_label("角色", exact=True).select_option("owner")
    await page.get_by_label("手机号", exact=True).fill(owner)
    await page.get_by_label("初始密码(至少 8 位)", exact=True).fill("owner-pass-1")
    await page.get_by_label("店主的门店编号(逗号分隔)", exact=True).fill(shop.code)
    await page.get_by_role("button", name="创建账号").click()
    await page.wait_for_load_state("networkidle")
    assert f"已创建账号 {owner}" in await page.content()
    await page.get_by_role("button", name="停用").first.click()
    await page.wait_for_load_state("networkidle")
    (row,) = await fetch("SELECT active FROM user_account WHERE phone = {}", owner)
    assert not row["active"]

    # A POS key shown once, working, then revoked.
    await page.goto("/web/hq/keys")
    await page.get_by_label("门店编号", exact=True).fill(shop.code)
    await page.get_by_role("button", name="发放新密钥").click()
    key = (await page.locator("#new-key code").inner_text()).strip()
    assert key.startswith("ttpos_")
    assert await page.locator("#channel-keys").count() == 1
    r = await client.get(f"/pos/v1/members/{member}", headers={"X-API-Key": key})
    assert r.status_code == 200
    await page.goto(f"/web/hq/keys?store={shop.code}")
    await page.get_by_role("button", name="吊销", exact=True).first.click()
    await page.wait_for_load_state("networkidle")
    # A sales channel's key, shown once, working, then revoked from its row.
    await page.get_by_label("渠道名称", exact=True).fill("控制台渠道")
    await page.get_by_role("button", name="发放渠道密钥").click()
    channel_key = (await page.locator("#new-channel-key code").inner_text()).strip()
    assert channel_key.startswith("ttch_")
    r = await client.get("/o2o/v1/orders/none", headers={"X-API-Key": channel_key})
    assert r.status_code == 404
    await shoot(page, "hq-keys")
    await page.get_by_role("button", name="吊销渠道 控制台渠道").first.click()
    await page.wait_for_load_state("networkidle")
    assert "已吊销渠道 控制台渠道" in await page.get_by_role("status").inner_text()
    r = await client.get("/o2o/v1/orders/none", headers={"X-API-Key": channel_key})
    assert r.status_code == 401

    # A campaign's reach counted before it is made.
    await page.goto("/web/hq/campaigns")
    await page.get_by_label("门店编号(逗号分隔)", exact=True).fill(shop.code)
    await page.get_by_role("button", name="计算覆盖人数").click()
    await page.wait_for_load_state("networkidle")
    assert "覆盖 1 位会员" in await page.locator("#reach").inner_text()
    await page.get_by_label("活动名称", exact=True).fill("控制台活动")
    await page.get_by_label("话术", exact=True).fill("您好,本店有新活动")
    await page.get_by_role("button", name="创建活动").click()
    await page.wait_for_load_state("networkidle")
    assert "已创建活动" in await page.content() and "控制台活动" in await page.content()
    await shoot(page, "hq-campaigns")

    # An import with a bad line: the result and the refused lines as CSV.
    csv_file = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8")
    with csv_file:
        csv_file.write("sku,name,category,stage\nCONSOLE-1,米粉,cereal,\nCONSOLE-2,奶粉,formula,\n")
    await page.goto("/web/hq/imports")
    await page.get_by_label("导入内容", exact=True).select_option("products")
    await page.get_by_label("文件(UTF-8,首行为列名)", exact=True).set_input_files(csv_file.name)
    await page.get_by_role("button", name="导入").click()
    await page.wait_for_load_state("networkidle")
    result = await page.locator("#result").inner_text()
    assert "拒绝 1" in result and "stage" in result
    async with page.expect_download() as download:
        await page.get_by_role("button", name="下载被拒绝的行 CSV").click()
    saved = await (await download.value).path()
    refused = await asyncio.to_thread(Path(saved).read_text, encoding="utf-8-sig")
    assert "3,stage" in refused
    await shoot(page, "hq-imports")

    # The trail names this login on each change above.
    await page.goto("/web/hq/audit")
    trail = await page.content()
    for entity in ("store", "login", "pos_key", "campaign", "product"):
        assert f"<td>{entity}</td>" in trail
    assert f"hq:{phone}" in trail
    await shoot(page, "hq-audit")
    await page.context.close()


async def test_advisor_accepts_and_delivers_an_o2o_order_on_the_phone(
    client: httpx.AsyncClient, products: None, server: str, browser: Any
) -> None:
    from orders.channels import create_channel_key
    from tests.test_o2o import _area, east_of, o2o_shop, order, place

    lat, lon = _area()
    store = await o2o_shop(client, *east_of(lat, lon, 2))
    channel = {"X-API-Key": await create_channel_key("小程序")}
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/members",
        json={"phone": phone, "name": "赵女士", "advisor_code": store.shop.advisors[0]},
        headers=store.shop.pos,
    )
    assert r.status_code == 201, r.text
    mine, taken = order(lat, lon, phone=phone), order(lat, lon, phone=phone)
    for body in (mine, taken):
        await place(client, channel, body)
    page = await page_for(browser, server, store.phones[0])
    assert (await counts(page))["urgent"] == 2
    card = page.locator("#s-urgent details.card", has_text=mine["order_id"])
    await card.locator("summary").click()
    assert "待接单 · 已等 0 / 30 分钟" in await card.locator(".ost").inner_text()
    assert "¥358.00" in await card.inner_text()
    assert not await card.get_by_role("button", name="未接通").count()  # no call buttons

    # Offline: the order's buttons wait, disabled, with a note; nothing is queued.
    await page.context.set_offline(True)
    await page.evaluate("window.dispatchEvent(new Event('offline'))")
    assert await card.get_by_role("button", name="接单").is_disabled()
    assert await card.get_by_role("button", name="拒单").is_disabled()
    assert "需联网" in await card.locator(".onote").inner_text()
    assert await fits_360(page)
    assert await page.evaluate(TOUCH) == {"small": [], "unnamed": []}
    await shoot(page, "advisor-order-offline")
    await page.context.set_offline(False)
    await page.evaluate("window.dispatchEvent(new Event('online'))")
    assert not await card.locator(".onote").is_visible()

    # 接单: the card says who took it and offers 已送达 (with the till's receipt).
    async with page.expect_response(lambda r: r.url.endswith("/accept")) as sent:
        await card.get_by_role("button", name="接单").click()
    assert (await sent.value).status == 200
    await card.locator(".ost", has_text="已由我接单").wait_for()
    assert not await card.get_by_role("button", name="拒单").count()
    assert await card.get_by_role("button", name="已送达").is_visible()
    assert await page.evaluate(TOUCH) == {"small": [], "unnamed": []}
    await shoot(page, "advisor-order")
    receipt_id = f"R-O2O-{mine['order_id']}"
    await card.get_by_label("收银小票号").fill(receipt_id)
    async with page.expect_response(lambda r: r.url.endswith("/delivered")) as sent:
        await card.get_by_role("button", name="已送达").click()
    assert (await sent.value).status == 201
    await page.locator("#s-urgent .n[data-count='1']").wait_for(state="attached")
    assert await counts(page) == {"urgent": 1, "overdue": 0, "today": 0, "done": 1}
    assert "赵女士 · 已送达" in await page.locator("#done-list").inner_text()
    (row,) = await fetch(
        "SELECT status, receipt_id FROM o2o_order WHERE order_id = {}", mine["order_id"]
    )
    assert (row["status"], row["receipt_id"]) == ("delivered", receipt_id)

    # A colleague took the other one first: 已被同事接单, not an error page.
    r = await client.post(
        f"/advisor/v1/orders/{taken['order_id']}/accept", headers=store.advisors[1]
    )
    assert r.status_code == 200
    other = page.locator("#s-urgent details.card", has_text=taken["order_id"])
    await other.locator("summary").click()
    async with page.expect_response(lambda r: r.url.endswith("/accept")) as sent:
        await other.get_by_role("button", name="接单").click()
    assert (await sent.value).status == 409
    await other.locator(".ost", has_text="已被同事接单").wait_for()
    assert not await other.get_by_role("button", name="接单").count()
    assert page.url.endswith("/web/advisor/")
    await page.context.close()
