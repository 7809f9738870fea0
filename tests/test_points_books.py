"""Points over time and on the books: lots expiring through the daily job (in a time
zone no other test's store keeps, so its passes touch only these members), the
warning and tier-up follow-ups, what a return undoes (follow-ups, a conversion, the
advisor's score, in a closed month as an adjustment), and the monthly settlement."""

from __future__ import annotations

import csv
import io
from datetime import date

import httpx

from advisor_api.jobs import daily_job
from core.db import fetch
from members import accounts
from tests.conftest import (
    FORMULA_1,
    PASSWORD,
    PROBIOTIC,
    Shop,
    ledger_of,
    login,
    make_shop,
    unique_phone,
)
from tests.test_outcomes import open_tasks, outcome, post_outcome
from tests.test_points_money import bought, give_back, redeem, till
from tests.test_tasks import advisor_login

Client = httpx.AsyncClient
ZONE = "America/Punta_Arenas"  # the lots tests' own zone


async def statuses(phone: str, kind: str) -> list[tuple[str, str | None]]:
    rows = await fetch(
        "SELECT t.status, t.status_reason FROM task t JOIN member m ON m.id = t.member"
        " WHERE m.phone = {} AND t.kind = {} ORDER BY t.id",
        phone,
        kind,
    )
    return [(r["status"], r["status_reason"]) for r in rows]


async def test_lots_lapse_at_the_end_of_their_month_24_months_on_once(
    client: Client, products: None
) -> None:
    shop = await make_shop(region="华西", timezone=ZONE)
    phone, small = unique_phone(), unique_phone()
    await bought(client, shop, phone, "2026-09-10T10:00:00-03:00", [(FORMULA_1, 1, "358.00")])
    await bought(client, shop, phone, "2026-11-10T10:00:00-03:00", [(PROBIOTIC, 1, "198.00")])
    await bought(client, shop, small, "2026-09-12T10:00:00-03:00", [(PROBIOTIC, 1, "60.00")])

    # 30 days before September's lot lapses (2028-09-30): a warning, for the lot of
    # 358 points but not for the lot of 60.
    await daily_job(date(2028, 9, 1), [ZONE])
    assert await open_tasks(phone, "points_expiring") != []
    assert await open_tasks(small, "points_expiring") == []
    assert (await daily_job(date(2028, 9, 2), [ZONE])).tasks.created.get("points_expiring", 0) == 0

    report = await daily_job(date(2028, 10, 1), [ZONE])
    assert report.points_expired == 358 + 60
    assert (await ledger_of(phone))[:2] == (198, 198)
    assert (await ledger_of(small))[:2] == (0, 0)
    again = await daily_job(date(2028, 10, 1), [ZONE])
    assert again.points_expired == 0 and (await ledger_of(phone))[:2] == (198, 198)
    rows = await fetch(
        "SELECT l.points, l.occurred_on, l.booked_month FROM points_ledger l"
        " JOIN member m ON m.id = l.member WHERE m.phone = {} AND l.kind = 'expire'",
        phone,
    )
    assert [(r["points"], str(r["occurred_on"])[:10]) for r in rows] == [(-358, "2028-10-01")]
    # The till shows only what is left, and when it lapses.
    assert (await till(client, shop, phone))["points_expiring"] == [
        {"points": 198, "expires_on": "2028-11-30"}
    ]


async def test_a_member_reaching_a_tier_gets_a_call_and_keeps_it_through_next_year(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    await bought(client, shop, phone, "2026-11-12T10:00:00+08:00", [(FORMULA_1, 4, "1432.00")])
    assert (await till(client, shop, phone))["tier"] is None
    await bought(client, shop, phone, "2026-11-13T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    member = await till(client, shop, phone)
    assert (member["tier"], member["tier_name"]) == ("vip", "VIP")
    assert await statuses(phone, "tier_up") == [("open", None)]
    # Another purchase in VIP makes no second call.
    await bought(client, shop, phone, "2026-11-14T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    assert len(await statuses(phone, "tier_up")) == 1
    rows = await fetch("SELECT tier, tier_year FROM member WHERE phone = {}", phone)
    assert (rows[0]["tier"], rows[0]["tier_year"]) == ("vip", 2026)


async def test_a_whole_return_cancels_its_follow_ups_and_undoes_its_conversion(
    client: Client, shop: Shop
) -> None:
    who = await advisor_login(client, shop.advisors[0])
    phone = unique_phone()
    await bought(client, shop, phone, "2026-11-17T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    (followup,) = await open_tasks(phone, "followup_3d")
    r = await post_outcome(client, who, followup, outcome("will_buy", "2026-11-20T09:00:00+08:00"))
    assert r.status_code == 201, r.text
    second = await bought(
        client, shop, phone, "2026-11-20T10:00:00+08:00", [(FORMULA_1, 1, "358.00")]
    )
    converted = await fetch("SELECT converted_purchase FROM task WHERE id = {}", followup)
    assert converted[0]["converted_purchase"] == second["purchase_id"]
    score = await fetch(
        "SELECT s.points, s.tasks_converted FROM advisor_score s JOIN advisor a ON a.id = s.advisor"
        " WHERE a.code = {} AND s.period = '2026-11'",
        shop.advisors[0],
    )
    assert (score[0]["points"], score[0]["tasks_converted"]) == (716, 1)

    back = await give_back(client, shop, second["receipt_id"])
    assert back.status_code == 201
    assert (await fetch("SELECT converted_purchase FROM task WHERE id = {}", followup))[0][
        "converted_purchase"
    ] is None
    assert ("cancelled", "returned") in await statuses(phone, "followup_3d")
    score = await fetch(
        "SELECT s.points, s.tasks_converted FROM advisor_score s JOIN advisor a ON a.id = s.advisor"
        " WHERE a.code = {} AND s.period = '2026-11'",
        shop.advisors[0],
    )
    assert (score[0]["points"], score[0]["tasks_converted"]) == (358, 0)


async def test_the_settlement_is_what_the_brand_owes_each_store_and_freezes_at_close(
    client: Client, hq: dict[str, str]
) -> None:
    shop = await make_shop()
    owner_phone = unique_phone()
    await accounts.create_user("owner", owner_phone, PASSWORD, store_codes=[shop.code])
    owner = await login(client, owner_phone)
    phone = unique_phone()
    got = await bought(
        client, shop, phone, "2026-09-05T10:00:00+08:00", [(FORMULA_1, 3, "1074.00")]
    )
    body = {
        "redemption_id": "RD-SEPT-1",
        "member_phone": phone,
        "points": 400,
        "redeemed_at": "2026-09-20T15:00:00+08:00",
        "lines": [{"sku": PROBIOTIC, "quantity": 1, "amount": "198.00"}],
    }
    assert (
        await client.post("/pos/v1/redemptions", json=body, headers=shop.pos)
    ).status_code == 201
    september = await store_line(client, hq, "2026-09", shop.code)
    assert september == {
        "store_code": shop.code,
        "store_name": f"测试店{shop.code}",
        "region": "华南",
        "points_issued": 1074,
        "points_redeemed": 400,
        "points_reversed": 0,
        "points_expired": 0,
        "redeemed_value": "28.00",
    }
    mine = await client.get(
        f"/owner/v1/stores/{shop.code}/settlement", params={"period": "2026-09"}, headers=owner
    )
    assert mine.status_code == 200, mine.text
    assert mine.json()["line"] == september
    assert [
        (r["redemption_id"], r["value"], r["lines"][0]["sku"]) for r in mine.json()["redemptions"]
    ] == [("RD-SEPT-1", "28.00", PROBIOTIC)]
    assert mine.json()["redemptions"][0]["member_phone"] == f"{phone[:3]}****{phone[-4:]}"
    elsewhere = await make_shop()
    theirs = await client.get(f"/owner/v1/stores/{elsewhere.code}/settlement", headers=owner)
    assert theirs.status_code == 404

    closed = await client.post("/hq/v1/periods/2026-09/close", headers=hq)
    assert closed.status_code == 200, closed.text
    # A return after the close: September's line stays; November carries it.
    back = await give_back(client, shop, got["receipt_id"])
    assert back.json()["points_reversed"] == 674 and back.json()["shortfall"] == 400
    frozen = await client.get("/hq/v1/settlements", params={"period": "2026-09"}, headers=hq)
    assert frozen.json()["frozen"] is True
    assert await store_line(client, hq, "2026-09", shop.code) == september
    # The return is November's fact: November's line carries it.
    assert (await store_line(client, hq, "2026-11", shop.code))["points_reversed"] == 674
    # A redemption made in September that reaches the server after the close is
    # booked in the first month after September still open (October, unless another
    # test closed it too): an adjustment, for points as for the advisor's score.
    closed_months = {r["month"] for r in await fetch("SELECT month FROM closed_month")}
    adjusted = "2026-11" if "2026-10" in closed_months else "2026-10"
    other = unique_phone()
    await bought(client, shop, other, "2026-09-06T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    late = {**body, "redemption_id": "RD-SEPT-LATE", "member_phone": other, "points": 100}
    assert (
        await client.post("/pos/v1/redemptions", json=late, headers=shop.pos)
    ).status_code == 201
    assert await store_line(client, hq, "2026-09", shop.code) == september
    line = await store_line(client, hq, adjusted, shop.code)
    assert (line["points_issued"], line["points_redeemed"]) == (358, 100)
    facts = await fetch(
        "SELECT f.amount, f.counts_on, f.booked_month FROM score_fact f"
        " JOIN advisor a ON a.id = f.advisor WHERE a.code = {} AND f.kind = 'points'"
        " ORDER BY f.id",
        shop.advisors[0],
    )
    assert [(f["amount"], str(f["counts_on"])[:10], f["booked_month"]) for f in facts] == [
        (1074, "2026-09-05", "2026-09"),
        (-1074, "2026-09-05", adjusted),
        (358, "2026-09-06", adjusted),
    ]

    as_csv = await client.get(
        "/hq/v1/settlements", params={"period": "2026-09"}, headers={**hq, "Accept": "text/csv"}
    )
    assert as_csv.status_code == 200 and as_csv.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert table[0][:3] == ["月份", "门店编码", "门店"]
    row = next(row for row in table if row[1] == shop.code)
    assert row[4:] == ["1074", "400", "0", "0", "28.00"]


async def store_line(
    client: Client, hq: dict[str, str], month: str, code: str
) -> dict[str, object]:
    r = await client.get("/hq/v1/settlements", params={"period": month}, headers=hq)
    assert r.status_code == 200, r.text
    return dict(next(line for line in r.json()["stores"] if line["store_code"] == code))


async def test_redemptions_are_worth_the_points_at_the_rate_they_were_made(
    client: Client, shop: Shop
) -> None:
    phone = unique_phone()
    await bought(client, shop, phone, "2026-11-12T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    r = await redeem(client, shop, phone, 33)
    # 33 points at 7.00 per 100: 2.31 yuan, to the fen.
    assert r.json()["value"] == "2.31"


async def test_the_pages_show_tier_points_about_to_lapse_and_the_settlement(
    client: Client, shop: Shop
) -> None:
    from tests.test_web import signed_in

    phone = unique_phone()
    # Bought in November 2024: its lot lapses at the end of November 2026, inside the
    # 30 days' warning; 1,800 points this year make the member VIP.
    await bought(client, shop, phone, "2024-11-05T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    await bought(client, shop, phone, "2026-11-18T10:00:00+08:00", [(FORMULA_1, 5, "1790.00")])
    assert (
        await redeem(client, shop, phone, 100, lines=[{"sku": PROBIOTIC, "quantity": 1}])
    ).status_code == 201
    advisor_phone = unique_phone()
    await accounts.create_user("advisor", advisor_phone, PASSWORD, advisor_code=shop.advisors[0])
    assert await signed_in(client, advisor_phone) == "/web/advisor/"
    page = (await client.get("/web/advisor/")).text
    assert "VIP" in page and "258 积分将于 2026-11-30 过期" in page

    owner_phone = unique_phone()
    await accounts.create_user("owner", owner_phone, PASSWORD, store_codes=[shop.code])
    await signed_in(client, owner_phone)
    page = (await client.get(f"/web/owner/stores/{shop.code}", params={"period": "2026-11"})).text
    assert "2026-11 积分结算" in page and "品牌应付本店<b>¥7.00</b>" in page
    assert f"{phone[:3]}****{phone[-4:]}" in page and f"{PROBIOTIC}×1" in page
    client.cookies.clear()
