"""League tables, contests, scores and bonus statements, over HTTP.

Each test works in a region of its own, so that other tests' scores never enter
its tables; closing a month is chain-wide and is only done for October."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx

from core.db import fetch
from members import accounts
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

W47 = "2026-11-18T10:00:00+08:00"  # this week (the suite's clock is Fri 2026-11-20)
W46 = "2026-11-11T10:00:00+08:00"


def region() -> str:
    return f"区{uuid.uuid4().hex[:6]}"


async def member(client: httpx.AsyncClient, shop: Shop) -> str:
    """A member registered with no advisor: buying later credits points only."""
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/members", json={"phone": phone, "name": "会员", "babies": []}, headers=shop.pos
    )
    assert r.status_code == 201, r.text
    return phone


async def buy(
    client: httpx.AsyncClient,
    shop: Shop,
    advisor: str,
    yuan: int,
    at: str,
    phone: str | None = None,
) -> dict[str, Any]:
    body = receipt(
        phone=phone or await member(client, shop),
        lines=[(FORMULA_1, 1, f"{yuan}.00")],
        purchased_at=at,
        advisor_code=advisor,
    )
    r = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
    assert r.status_code == 201, r.text
    return body


async def advisor_login(client: httpx.AsyncClient, code: str) -> dict[str, str]:
    phone = unique_phone()
    await accounts.create_user("advisor", phone, PASSWORD, advisor_code=code)
    return await login(client, phone)


async def test_ties_rank_change_and_me_outside_the_top(
    client: httpx.AsyncClient, products: None, hq: dict[str, str]
) -> None:
    area = region()
    s1, s2 = await make_shop(area), await make_shop(area)
    a1, a2 = s1.advisors
    a3, a4 = s2.advisors
    # This week: 300, 200, 200, 100 points (0.1 a point: 30, 20, 20, 10).
    for shop, advisor, yuan in [(s1, a1, 300), (s1, a2, 200), (s2, a3, 200), (s2, a4, 100)]:
        await buy(client, shop, advisor, yuan, W47)
    # Last week a4 led, a3 was second, a1 third, a2 had nothing.
    for shop, advisor, yuan in [(s2, a4, 500), (s2, a3, 400), (s1, a1, 100)]:
        await buy(client, shop, advisor, yuan, W46)

    me = await advisor_login(client, a4)
    r = await client.get(
        "/v1/leaderboards/advisors",
        params={"scope": f"region:{area}", "period": "2026-W47", "limit": 3},
        headers=me,
    )
    assert r.status_code == 200, r.text
    table = r.json()
    got = [(e["rank"], e["advisor_code"], e["score"], e["rank_change"]) for e in table["entries"]]
    # Standard competition ranking; inside the tie, the advisor registered first.
    assert got == [(1, a1, "30.00", 2), (2, a2, "20.00", None), (2, a3, "20.00", 0)]
    assert table["entries"][0]["points"] == 300
    assert table["entries"][0]["advisor_name"] == "顾问0"  # same region: full name
    assert table["me"]["advisor_code"] == a4
    assert (table["me"]["rank"], table["me"]["rank_change"]) == (4, -3)

    # The same table when fewer have scored than places asked for: all four, and
    # last week's order for the day before any scored this week.
    r = await client.get(
        "/v1/leaderboards/advisors",
        params={"scope": f"region:{area}", "period": "2026-W46", "limit": 10},
        headers=hq,
    )
    ranks = [(e["rank"], e["advisor_code"], e["score"]) for e in r.json()["entries"]]
    assert ranks == [(1, a4, "50.00"), (2, a3, "40.00"), (3, a1, "10.00"), (4, a2, "0.00")]
    assert "me" not in r.json() or r.json()["me"] is None

    # Stores: s1 has 50, s2 30; per active advisor 25 and 15.
    r = await client.get(
        "/v1/leaderboards/stores",
        params={"scope": f"region:{area}", "period": "2026-W47"},
        headers=me,
    )
    stores = r.json()
    assert [(e["rank"], e["store_code"], e["score"]) for e in stores["entries"]] == [
        (1, s1.code, "50.00"),
        (2, s2.code, "30.00"),
    ]
    assert stores["me"]["store_code"] == s2.code
    assert [e["rank_change"] for e in stores["entries"]] == [1, -1]  # s2 led last week
    r = await client.get(
        "/v1/leaderboards/stores",
        params={"scope": f"region:{area}", "period": "2026-W47", "per_advisor": "true"},
        headers=me,
    )
    assert [(e["store_code"], e["score"], e["active_advisors"]) for e in r.json()["entries"]] == [
        (s1.code, "25.00", 2),
        (s2.code, "15.00", 2),
    ]

    # Someone from another region sees initials and store codes, HQ sees names.
    elsewhere = await make_shop(region())
    outsider = await advisor_login(client, elsewhere.advisors[0])
    r = await client.get(
        "/v1/leaderboards/advisors",
        params={"scope": f"region:{area}", "period": "2026-W47"},
        headers=outsider,
    )
    assert r.json()["entries"][0]["advisor_name"] == f"顾* ({s1.code})"
    assert r.json()["me"] is None  # not in that table
    r = await client.get(
        "/v1/leaderboards/advisors",
        params={"scope": f"region:{area}", "period": "2026-W47"},
        headers=hq,
    )
    assert r.json()["entries"][0]["advisor_name"] == "顾问0"

    # A national table has them too, with the same scores; me ranks among everyone.
    r = await client.get(
        "/v1/leaderboards/advisors", params={"period": "2026-W47", "limit": 500}, headers=me
    )
    national = {e["advisor_code"]: e for e in r.json()["entries"]}
    assert national[a1]["score"] == "30.00"
    assert r.json()["me"]["rank"] == 1 + sum(
        1 for e in r.json()["entries"] if float(e["score"]) > 10
    )

    # PK: HQ pairs the two stores for the week; s1 leads and the table says so.
    r = await client.post(
        "/hq/v1/contests",
        json={
            "name": "千店牵手PK赛",
            "kind": "pk",
            "subject": "store",
            "scope": f"region:{area}",
            "starts_on": "2026-11-16",
            "ends_on": "2026-11-22",
            "weights": {"points": "1", "new_member": "0"},
            "pairs": [[s2.code, s1.code]],
        },
        headers=hq,
    )
    assert r.status_code == 201, r.text
    contest = r.json()
    assert contest["weights"]["points"] == "1.00"
    r = await client.get(f"/v1/contests/{contest['contest_id']}/standings", headers=me)
    standings = r.json()
    (match,) = standings["pairs"]
    assert (match["store_a"]["store_code"], match["store_a"]["score"]) == (s2.code, "300.00")
    assert (match["store_b"]["store_code"], match["store_b"]["score"]) == (s1.code, "500.00")
    assert match["leader"] == s1.code and match["decided"] is False
    assert [(t["store_code"], t["wins"], t["losses"]) for t in standings["table"]] == [
        (s1.code, 1, 0),
        (s2.code, 0, 1),
    ]
    # Automatic pairing of the region's two stores makes the same single pair.
    r = await client.post(
        "/hq/v1/contests",
        json={
            "name": "自动配对",
            "kind": "pk",
            "subject": "store",
            "scope": f"region:{area}",
            "starts_on": "2026-11-16",
            "ends_on": "2026-11-22",
            "pairs": "auto",
        },
        headers=hq,
    )
    assert r.status_code == 201, r.text
    assert len(r.json()["pairs"]) == 1 and r.json()["unpaired"] == []

    # A league contest over two weeks with its own weights (a point is worth 1).
    r = await client.post(
        "/hq/v1/contests",
        json={
            "name": "促销员先锋赛",
            "kind": "league",
            "subject": "advisor",
            "scope": f"region:{area}",
            "starts_on": "2026-11-09",
            "ends_on": "2026-11-22",
            "weights": {"points": "1"},
        },
        headers=hq,
    )
    league = r.json()
    r = await client.get(f"/v1/contests/{league['contest_id']}/standings", headers=me)
    got = [(e["rank"], e["advisor_code"], e["score"]) for e in r.json()["advisors"]]
    assert got == [(1, a3, "600.00"), (1, a4, "600.00"), (3, a1, "400.00"), (4, a2, "200.00")]
    assert r.json()["me"]["rank"] == 1


async def test_my_score_bonus_and_ranks(
    client: httpx.AsyncClient, products: None, hq: dict[str, str]
) -> None:
    area = region()
    shop = await make_shop(area)
    advisor = shop.advisors[0]
    # Two members recruited through receipts (new phones) and 1,500 points.
    await client.post(
        "/pos/v1/purchases",
        json=receipt(lines=[(FORMULA_1, 1, "1000.00")], purchased_at=W47, advisor_code=advisor),
        headers=shop.pos,
    )
    r = await client.post(
        "/pos/v1/members",
        json={"phone": unique_phone(), "name": "新会员", "advisor_code": advisor, "babies": []},
        headers=shop.pos,
    )
    assert r.status_code == 201
    body = await buy(client, shop, advisor, 500, W47)
    # A replayed receipt counts nothing twice.
    r = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
    assert r.status_code == 200
    me = await advisor_login(client, advisor)
    r = await client.get("/advisor/v1/me/score", headers=me)
    assert r.status_code == 200, r.text
    score = r.json()
    assert score["period"] == "2026-11"
    assert (score["new_members"], score["points"]) == (2, 1500)
    assert score["score"] == "250.00"  # 2 × 50 + 1,500 × 0.1
    assert score["bonus_estimate"] == "55.00"  # 2 × 20 + 1.5 × 10
    assert score["rank"]["store"] == 1 and score["rank"]["region"] == 1
    # The other advisor has nothing yet and ranks after them.
    other = await advisor_login(client, shop.advisors[1])
    r = await client.get("/advisor/v1/me/score", params={"period": "2026-W47"}, headers=other)
    assert (r.json()["score"], r.json()["rank"]["store"], r.json()["bonus_estimate"]) == (
        "0.00",
        2,
        "0.00",
    )
    # HQ raises the rate per 1,000 points from November: the estimate follows.
    r = await client.put(
        "/hq/v1/bonus-rates",
        json={"effective_from": "2026-11", "per_new_member": "20", "per_1000_points": "10.01"},
        headers=hq,
    )
    assert r.status_code == 200, r.text
    r = await client.get("/advisor/v1/me/score", headers=me)
    assert r.json()["bonus_estimate"] == "55.02"  # 40 + 15.015 half-up
    r = await client.put(
        "/hq/v1/bonus-rates",
        json={"effective_from": "2026-11", "per_new_member": "20", "per_1000_points": "10"},
        headers=hq,
    )


async def test_closed_month_stays_frozen_and_late_facts_adjust_the_next(
    client: httpx.AsyncClient, products: None, hq: dict[str, str]
) -> None:
    area = region()
    shop = await make_shop(area)
    advisor = shop.advisors[0]
    await buy(client, shop, advisor, 800, "2026-10-15T10:00:00+08:00")

    r = await client.post("/hq/v1/periods/2026-11/close", headers=hq)
    assert r.status_code == 409  # November is not over
    r = await client.post("/hq/v1/periods/2026-10/close", headers=hq)
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["status"] == "closed"
    (line,) = [x for x in closed["lines"] if x["advisor_code"] == advisor]
    assert (line["line"], line["points"], line["amount"]) == ("regular", 800, "8.00")

    # Each advisor with an October line hears their rank, in the close's transaction.
    (push,) = await fetch(
        "SELECT o.title, o.body, o.data FROM push_outbox o JOIN advisor a ON a.id = o.advisor"
        " WHERE a.code = {} AND o.kind = 'rank' AND o.dedupe_key LIKE 'rank:2026-10:%'",
        advisor,
    )
    assert push["title"] == "10月排名已出" and push["body"].startswith("10月全国排名第 ")
    assert '"period": "2026-10"' in push["data"]

    csv_before = await client.get(
        "/hq/v1/bonus-statements",
        params={"period": "2026-10"},
        headers={**hq, "Accept": "text/csv"},
    )
    assert csv_before.status_code == 200
    assert csv_before.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv_before.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(csv_before.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["月份", "顾问编号", "顾问姓名"]
    mine = [row for row in rows if row[1] == advisor]
    assert mine[0][2] == "顾问0" and mine[0][5] == "本月" and mine[0][15] == "8.00"

    # A receipt from October reaches the server after the close.
    await buy(client, shop, advisor, 300, "2026-10-30T18:00:00+08:00")
    await buy(client, shop, advisor, 200, "2026-11-19T10:00:00+08:00")
    csv_after = await client.get(
        "/hq/v1/bonus-statements",
        params={"period": "2026-10"},
        headers={**hq, "Accept": "text/csv"},
    )
    assert csv_after.content == csv_before.content
    r = await client.post("/hq/v1/periods/2026-10/close", headers=hq)
    assert r.status_code == 200 and r.json()["closed_at"] == closed["closed_at"]

    november = (
        await client.get("/hq/v1/bonus-statements", params={"period": "2026-11"}, headers=hq)
    ).json()
    assert november["status"] == "open"
    lines = [x for x in november["lines"] if x["advisor_code"] == advisor]
    assert [(x["line"], x["original_date"], x["points"], x["amount"]) for x in lines] == [
        ("regular", None, 200, "2.00"),
        ("adjustment", "2026-10-30", 300, "3.00"),
    ]
    # Each line leads to the ledger rows behind it.
    r = await client.get(lines[1]["ledger"]["href"], headers=hq)
    assert r.status_code == 200, r.text
    (entry,) = r.json()["entries"]
    assert (entry["kind"], entry["amount"], entry["counts_on"], entry["booked_month"]) == (
        "points",
        300,
        "2026-10-30",
        "2026-11",
    )
    assert lines[1]["ledger"]["entries"] == 1
    # The league table still counts the late points on the day they were earned.
    r = await client.get(
        "/v1/leaderboards/advisors",
        params={"scope": f"store:{shop.code}", "period": "2026-10"},
        headers=hq,
    )
    assert r.json()["entries"][0]["points"] == 1100


async def test_task_facts_follow_the_task_and_rebuild_agrees(
    client: httpx.AsyncClient, products: None, hq: dict[str, str]
) -> None:
    from incentives.rebuild import rebuild
    from tests.test_rebuild import snapshot

    shop = await make_shop(region())
    advisor = shop.advisors[0]
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/members",
        json={
            "phone": phone,
            "advisor_code": advisor,
            "babies": [],
            "registered_at": "2026-11-16T09:00:00+08:00",
        },
        headers=shop.pos,
    )
    assert r.status_code == 201, r.text
    await buy(client, shop, advisor, 100, "2026-11-16T10:00:00+08:00", phone=phone)
    me = await advisor_login(client, advisor)
    r = await client.get("/advisor/v1/tasks", headers=me)
    task = next(t for t in r.json()["tasks"] if t["kind"] == "followup_3d")
    r = await client.post(
        f"/advisor/v1/tasks/{task['task_id']}/outcome",
        json={
            "client_outcome_id": unique_code("O"),
            "channel": "phone",
            "result": "reached",
            "recorded_at": "2026-11-19T13:00:00+08:00",
        },
        headers=me,
    )
    assert r.status_code == 201, r.text
    await buy(client, shop, advisor, 100, "2026-11-20T09:00:00+08:00", phone=phone)
    score = (await client.get("/advisor/v1/me/score", headers=me)).json()
    assert (score["tasks_done"], score["tasks_converted"]) == (1, 1)
    # The member then says (on a call made before the first one) not to call again:
    # the later call no longer counts, nor its conversion; the ledger keeps both
    # rows and their reversals.
    others = [t for t in (await client.get("/advisor/v1/tasks", headers=me)).json()["tasks"]]
    open_task = next(t for t in others if t["status"] == "open")
    r = await client.post(
        f"/advisor/v1/tasks/{open_task['task_id']}/outcome",
        json={
            "client_outcome_id": unique_code("O"),
            "channel": "phone",
            "result": "do_not_contact",
            "recorded_at": "2026-11-19T12:30:00+08:00",
        },
        headers=me,
    )
    assert r.status_code == 201, r.text
    score = (await client.get("/advisor/v1/me/score", headers=me)).json()
    assert (score["tasks_done"], score["tasks_converted"]) == (1, 0)
    before = await snapshot()
    await rebuild("2026-11")
    assert await snapshot() == before


async def test_bad_input_and_who_may_look(
    client: httpx.AsyncClient, products: None, hq: dict[str, str]
) -> None:
    shop = await make_shop(region())
    me = await advisor_login(client, shop.advisors[0])
    for params, field in [
        ({"scope": "planet"}, "scope"),
        ({"scope": "store:NOPE"}, "scope"),
        ({"period": "2026-13"}, "period"),
        ({"limit": "0"}, "limit"),
        ({"period": "0001-01"}, "period"),
        ({"period": "0001-W01"}, "period"),
        ({"scope": "region:\x00"}, "scope"),
    ]:
        r = await client.get("/v1/leaderboards/advisors", params=params, headers=me)
        assert r.status_code in (400, 422), (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in r.text
    for weight in ("-1", "0.001", "1e3", ""):
        r = await client.put("/hq/v1/score-weights", json={"points": weight}, headers=hq)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "points", weight
    r = await client.put("/hq/v1/score-weights", json={"points": "1000001"}, headers=hq)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "weights.points"
    r = await client.post(
        "/hq/v1/contests",
        json={
            "name": "x",
            "kind": "pk",
            "subject": "advisor",
            "scope": "national",
            "starts_on": "2026-11-01",
            "ends_on": "2026-11-30",
            "pairs": "auto",
        },
        headers=hq,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "subject"
    r = await client.post(
        "/hq/v1/contests",
        json={
            "name": "x",
            "kind": "pk",
            "subject": "store",
            "scope": "national",
            "starts_on": "2026-11-01",
            "ends_on": "2026-11-30",
            "pairs": [[shop.code, shop.code]],
        },
        headers=hq,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pairs[0]"
    r = await client.post(
        "/hq/v1/contests",
        json={
            "name": "x",
            "kind": "league",
            "subject": "store",
            "scope": "national",
            "starts_on": "9999-12-01",
            "ends_on": "9999-12-31",
        },
        headers=hq,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "starts_on"
    r = await client.get("/v1/contests/999999/standings", headers=me)
    assert r.status_code == 404
    # Statements, rates, weights and closing are HQ's; tills see no league tables.
    for method, path in [
        ("GET", "/hq/v1/bonus-statements?period=2026-11"),
        ("POST", "/hq/v1/periods/2026-10/close"),
        ("PUT", "/hq/v1/score-weights"),
        ("GET", "/hq/v1/score-ledger?advisor=A1&booked_month=2026-11"),
    ]:
        r = await client.request(method, path, headers=me, json={})
        assert r.status_code == 403, (path, r.status_code)
    r = await client.get("/v1/leaderboards/advisors", headers=shop.pos)
    assert r.status_code == 401
    r = await client.get("/advisor/v1/me/score", headers=hq)
    assert r.status_code == 403
