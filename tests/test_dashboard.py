"""The owner's dashboard against a hand-worked example."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from members import accounts
from tasks.daily import run_daily
from tests.conftest import FORMULA_1, FORMULA_2, PASSWORD, login, make_shop, unique_phone
from tests.test_outcomes import open_tasks, outcome, post_outcome
from tests.test_tasks import advisor_login, buy


async def register(client: httpx.AsyncClient, pos: dict[str, str], advisor: str, when: str) -> str:
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/members",
        json={"phone": phone, "name": "妈妈", "advisor_code": advisor, "registered_at": when},
        headers=pos,
    )
    assert r.status_code == 201
    return phone


async def test_the_dashboard_matches_a_hand_worked_month(
    client: httpx.AsyncClient, products: None, hq: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """November 2026 at a store with advisors A and B.

    - m1 joins through A on 11-05 and buys 358.00 of stage-1 formula from A on 11-17:
      a followup (due 11-20, expires 11-23) and a replenish (due 11-26). A reaches m1
      on 11-20: the followup is done. m1 buys 200.00 from A on 11-22: that converts
      the followup (200.00), makes a new followup (due 11-25) and a new replenish
      (due 12-01) that supersedes the old one.
    - m2 joins through B on 11-10 and buys 338.00 of stage-2 formula from B on 11-18:
      a followup (due 11-21, expires 11-24) that B never works, and a replenish (due
      11-29, expires 12-09) that B closes with "wrong number" on 11-25.
    - m3 joins through A on 10-20 (not a November recruit) and buys nothing.
    - The daily run of 11-25 expires m2's followup.

    A: 1 new member, 558 points, 2 due (both followups; the superseded replenish does
       not count), 1 done and 0 expired among tasks expiring in November (rate 1.0000),
       1 conversion of 200.00.
    B: 1 new member, 338 points, 2 due, 0 done and 1 expired (rate 0.0000).
    Store: 2 new members, 896 points, 4 due, 1 done, 1 expired (0.5000), 1 conversion
       of 200.00, and m2's phone to fix.
    RN3: A's revenue is 558.00, of which m1's second purchase (5 days after her
       first) is a repeat: 200 / 558 = 0.3584. B's 338.00 is a first purchase: 0.0000.
       The store: 200 / 896 = 0.2232.
    """
    shop = await make_shop()
    a, b = shop.advisors
    m1 = await register(client, shop.pos, a, "2026-11-05T10:00:00+08:00")
    m2 = await register(client, shop.pos, b, "2026-11-10T10:00:00+08:00")
    await register(client, shop.pos, a, "2026-10-20T10:00:00+08:00")
    await buy(client, shop, m1, "2026-11-17T10:00:00+08:00", [(FORMULA_1, 1, "358.00")])
    await buy(client, shop, m2, "2026-11-18T10:00:00+08:00", [(FORMULA_2, 1, "338.00")])
    who_a, who_b = await advisor_login(client, a), await advisor_login(client, b)
    (followup_1,) = await open_tasks(m1, "followup_3d")
    await post_outcome(
        client, who_a, followup_1, outcome("reached", at="2026-11-20T11:00:00+08:00")
    )
    monkeypatch.setenv("TIANTIAN_NOW", "2026-11-25T12:00:00+08:00")
    await buy(client, shop, m1, "2026-11-22T10:00:00+08:00", [(FORMULA_1, 1, "200.00")])
    (replenish_2,) = await open_tasks(m2, "replenish")
    await post_outcome(
        client, who_b, replenish_2, outcome("wrong_number", at="2026-11-25T09:00:00+08:00")
    )
    await run_daily(date(2026, 11, 25))

    owner_phone = unique_phone()
    await accounts.create_user("owner", owner_phone, PASSWORD, store_codes=[shop.code])
    owner = await login(client, owner_phone)
    r = await client.get(
        f"/owner/v1/stores/{shop.code}/dashboard", params={"period": "2026-11"}, headers=owner
    )
    assert r.status_code == 200, r.text
    board = r.json()
    lines = {line["advisor_code"]: line for line in board["advisors"]}
    figures = (
        "new_members",
        "points",
        "tasks_due",
        "tasks_done",
        "tasks_expired",
        "completion_rate",
        "conversions",
        "converted_amount",
        "revenue",
        "rn3",
    )
    assert [lines[a][f] for f in figures] == [
        1,
        558,
        2,
        1,
        0,
        "1.0000",
        1,
        "200.00",
        "558.00",
        "0.3584",
    ]
    assert [lines[b][f] for f in figures] == [
        1,
        338,
        2,
        0,
        1,
        "0.0000",
        0,
        "0.00",
        "338.00",
        "0.0000",
    ]
    assert [board["store"][f] for f in figures] == [
        2,
        896,
        4,
        1,
        1,
        "0.5000",
        1,
        "200.00",
        "896.00",
        "0.2232",
    ]
    assert [w["phone"] for w in board["wrong_numbers"]] == [f"{m2[:3]}****{m2[-4:]}"]

    # Only their stores: another owner, an advisor, a bad period.
    other_owner = unique_phone()
    await accounts.create_user(
        "owner", other_owner, PASSWORD, store_codes=[(await make_shop()).code]
    )
    r = await client.get(
        f"/owner/v1/stores/{shop.code}/dashboard", headers=await login(client, other_owner)
    )
    assert r.status_code == 404
    assert (
        await client.get(f"/owner/v1/stores/{shop.code}/dashboard", headers=who_a)
    ).status_code == 403
    assert (
        await client.get(f"/owner/v1/stores/{shop.code}/dashboard", headers=hq)
    ).status_code == 200
    # Not the shape of a period: the schema's 400; the shape of one but no such day: 422.
    for period, status in (("2026-13", 400), ("2026-02-30", 422)):
        bad = await client.get(
            f"/owner/v1/stores/{shop.code}/dashboard", params={"period": period}, headers=owner
        )
        assert bad.status_code == status and bad.json()["errors"][0]["field"] == "period"
