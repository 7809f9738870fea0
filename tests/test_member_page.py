"""会员全知道 and the member search: the API (``GET /advisor/v1/members?q=`` and the
member view's run-out days and next stage), and the phone's pages over HTTP: the
day's list in its sections, the member page for advisors and (read-only) owners."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from members import accounts
from tests.conftest import PASSWORD, Shop, login, make_shop, unique_phone
from tests.test_tasks import advisor_login, buy, join
from tests.test_web import csrf_of, signed_in

Client = httpx.AsyncClient


async def register(client: Client, shop: Shop, phone: str, name: str) -> int:
    r = await client.post(
        "/pos/v1/members",
        json={"phone": phone, "name": name, "advisor_code": shop.advisors[0], "babies": []},
        headers=shop.pos,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["member_id"])


def twin_phone(phone: str) -> str:
    """Another mobile with the same last four digits."""
    return f"136{uuid.uuid4().int % 10**4:04d}{phone[-4:]}"


async def search(client: Client, who: dict[str, str], **query: Any) -> httpx.Response:
    return await client.get("/advisor/v1/members", params=query, headers=who)


async def test_search_finds_a_member_of_the_store_by_tail_phone_or_name_and_never_another_store(
    client: Client, shop: Shop
) -> None:
    other = await make_shop()
    name = f"张{uuid.uuid4().hex[:6]}"
    phone = unique_phone()
    mine = await register(client, shop, phone, name)
    theirs = await register(client, other, twin_phone(phone), name)
    who = await advisor_login(client, shop.advisors[1])  # any advisor of the store

    by_tail = (await search(client, who, q=phone[-4:])).json()
    assert by_tail["by"] == "phone_tail"
    ids = [m["member_id"] for m in by_tail["members"]]
    assert mine in ids and theirs not in ids
    hit = next(m for m in by_tail["members"] if m["member_id"] == mine)
    assert (hit["name"], hit["phone"]) == (name, phone)

    whole = (await search(client, who, q=f"{phone[:3]} {phone[3:7]} {phone[7:]}")).json()
    assert whole["by"] == "phone" and [m["member_id"] for m in whole["members"]] == [mine]
    assert (await search(client, who, q=twin_phone(phone))).json()["members"] == []

    by_name = (await search(client, who, q=name[:4])).json()
    assert by_name["by"] == "name" and [m["member_id"] for m in by_name["members"]] == [mine]
    # Store B's advisor finds their own, never store A's.
    stranger = await advisor_login(client, other.advisors[0])
    assert [m["member_id"] for m in (await search(client, stranger, q=name)).json()["members"]] == [
        theirs
    ]


async def test_search_pages_in_name_order_and_says_what_it_cannot_read(
    client: Client, shop: Shop
) -> None:
    family = f"李{uuid.uuid4().hex[:4]}"
    made = [await register(client, shop, unique_phone(), f"{family}{i}") for i in range(3)]
    who = await advisor_login(client, shop.advisors[0])
    first = (await search(client, who, q=family, limit=2)).json()
    assert [m["member_id"] for m in first["members"]] == made[:2] and first["more"] is True
    rest = (await search(client, who, q=family, limit=2, offset=2)).json()
    assert [m["member_id"] for m in rest["members"]] == made[2:] and rest["more"] is False
    for q in ("12", "   ", "123456"):
        r = await search(client, who, q=q)
        assert r.status_code == 422, (q, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "q" in r.text
    assert (await search(client, who, q="1234", limit=0)).status_code == 400


async def test_the_member_view_gives_run_out_days_by_category_and_the_next_stage(
    client: Client, shop: Shop
) -> None:
    phone = await join(client, shop, shop.advisors[0], birth="2026-07-10")
    # A can every 20 days against a label of 12: the member's own pace, as replenish
    # counts it; the probiotic once, by its label's 30 days.
    for when in ("2026-10-01", "2026-10-21", "2026-11-10"):
        await buy(client, shop, phone, f"{when}T10:00:00+08:00")
    await buy(client, shop, phone, "2026-11-12T10:00:00+08:00", [("TPB-30", 2, "198.00")])
    who = await advisor_login(client, shop.advisors[0])
    (hit,) = (await search(client, who, q=phone)).json()["members"]
    view = (await client.get(f"/advisor/v1/members/{hit['member_id']}", headers=who)).json()
    assert view["run_outs"] == [
        {
            "category": "formula",
            "name": "奶粉",
            "last_bought_on": "2026-11-10",
            "units": 1,
            "runs_out_on": "2026-11-30",
        },
        {
            "category": "probiotic",
            "name": "益生菌",
            "last_bought_on": "2026-11-12",
            "units": 2,
            "runs_out_on": "2027-01-11",
        },
    ]
    (baby,) = view["babies"]
    assert (baby["age_months"], baby["stage"], baby["next_stage_on"]) == (4, 1, "2027-01-10")


def count_of(page: str, section: str) -> int:
    found = re.search(rf'id="h-{section}">[^<]* <span class="n" data-count="(\d+)"', page)
    assert found, section
    return int(found.group(1))


async def test_the_phone_page_lists_the_day_in_sections_and_opens_the_member(
    client: Client, shop: Shop
) -> None:
    today_phone = await join(client, shop, shop.advisors[0], birth="2026-05-25")
    await buy(client, shop, today_phone, "2026-11-17T10:00:00+08:00")  # follow-up due today
    late_phone = await join(client, shop, shop.advisors[0])
    await buy(client, shop, late_phone, "2026-11-15T10:00:00+08:00")  # due 11-18: overdue
    phone = unique_phone()
    await accounts.create_user("advisor", phone, PASSWORD, advisor_code=shop.advisors[0])
    who = await login(client, phone)
    cards = (await client.get("/advisor/v1/today", headers=who)).json()["cards"]
    task = next(c for c in cards if c["member"]["phone"] == today_phone)["tasks"][0]
    member_id = next(c for c in cards if c["member"]["phone"] == today_phone)["member"]["member_id"]
    # The member asks for a delivery: the call is done, and a delivery lands in 紧急.
    r = await client.post(
        f"/advisor/v1/tasks/{task['task_id']}/outcome",
        json={
            "client_outcome_id": uuid.uuid4().hex,
            "channel": "phone",
            "result": "delivery_requested",
            "note": "下午三点后在家",
            "recorded_at": "2026-11-20T11:00:00+08:00",
        },
        headers=who,
    )
    assert r.status_code == 201, r.text

    await signed_in(client, phone)
    listing = await client.get("/web/advisor/")
    page = listing.text
    counts = {s: count_of(page, s) for s in ("urgent", "overdue", "today", "done")}
    assert counts == {"urgent": 1, "overdue": 1, "today": 0, "done": 1}
    urgent = page[page.index('id="s-urgent"') : page.index('id="s-overdue"')]
    assert "送货" in urgent and f'data-member="{member_id}"' in urgent
    assert "要送货" in page[page.index('id="s-done"') :]

    # 明天再联系 posts the card's one form (note and all) to the snooze.
    late = next(c for c in cards if c["member"]["phone"] == late_phone)["tasks"][0]
    moved = await client.post(
        f"/web/advisor/tasks/{late['task_id']}/snooze",
        data={"_csrf_token": csrf_of(listing), "note": "", "until": "2026-11-21"},
    )
    assert moved.status_code == 303, moved.text
    page = (await client.get("/web/advisor/")).text
    assert (count_of(page, "overdue"), count_of(page, "done")) == (0, 1)

    member = await client.get(f"/web/advisor/members/{member_id}")
    assert member.status_code == 200
    text = member.text
    assert f'href="tel:{today_phone}"' in text
    assert "5 个月 · 1 段 · 2026-11-25 转 2 段" in text  # born 05-25: six months on 11-25
    assert "奶粉</b> 2026-11-17 买 1 件 · 预计 2026-11-29 用完" in text
    assert "11-20 11:00 要送货:下午三点后在家" in text  # the call, on the store's clock
    open_part = text[text.index('id="open"') : text.index('id="history"')]
    assert "送货" in open_part and 'class="outcome"' in open_part  # with its buttons

    # The owner reads the same page for their store's members, without buttons; no
    # one sees another store's member.
    owner = unique_phone()
    await accounts.create_user("owner", owner, PASSWORD, store_codes=[shop.code])
    await signed_in(client, owner)
    read = await client.get(f"/web/owner/members/{member_id}")
    assert read.status_code == 200 and f"tel:{today_phone}" in read.text
    assert 'class="outcome"' not in read.text and "app.js" not in read.text
    found = await client.get("/web/owner/search", params={"q": today_phone[-4:]})
    assert f'href="/web/owner/members/{member_id}"' in found.text
    other = await make_shop()
    stranger = unique_phone()
    await accounts.create_user("owner", stranger, PASSWORD, store_codes=[other.code])
    await signed_in(client, stranger)
    assert (await client.get(f"/web/owner/members/{member_id}")).status_code == 404
    found = await client.get("/web/owner/search", params={"q": today_phone[-4:]})
    assert found.status_code == 200 and f"/members/{member_id}" not in found.text
    colleague = unique_phone()
    await accounts.create_user("advisor", colleague, PASSWORD, advisor_code=other.advisors[0])
    await signed_in(client, colleague)
    assert (await client.get(f"/web/advisor/members/{member_id}")).status_code == 404
    bad = await client.get("/web/advisor/search", params={"q": "12"})
    assert bad.status_code == 200 and "请输入手机尾号" in bad.text
