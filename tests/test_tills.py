"""Single receipts from many tills at once, as a busy morning sends them: the server
writes those that arrive together in one transaction (a group commit), and each till
still gets its own answer, as if its receipt had been written alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from core.db import fetch
from tests.conftest import FORMULA_1, PROBIOTIC, ledger_of, make_shop, receipt, unique_phone

Client = httpx.AsyncClient


async def post(client: Client, pos: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    return await client.post("/pos/v1/purchases", json=body, headers=pos)


async def test_tills_posting_at_once_each_get_their_own_answer(
    client: Client, products: None
) -> None:
    shops = [await make_shop() for _ in range(4)]
    # One member shops at every store the same morning; others at one store each.
    regular = unique_phone()
    bodies = []
    for s, shop in enumerate(shops):
        for i in range(5):
            phone = regular if i == 0 else unique_phone()
            bodies.append(
                (
                    shop,
                    receipt(
                        phone=phone,
                        purchased_at=f"2026-11-20T{8 + s:02d}:{10 + i}:00+08:00",
                        lines=[(FORMULA_1, 1, "358.00"), (PROBIOTIC, 1, "129.00")],
                    ),
                )
            )
    answers = await asyncio.gather(*[post(client, shop.pos, body) for shop, body in bodies])
    assert [a.status_code for a in answers] == [201] * len(bodies)
    assert all(a.json()["points_earned"] == 487 for a in answers)
    # Every receipt is at its own store, for its own member.
    for (shop, body), a in zip(bodies, answers, strict=True):
        row = await fetch(
            "SELECT s.code, m.phone FROM purchase p JOIN store s ON s.id = p.store"
            " JOIN member m ON m.id = p.member WHERE p.id = {}",
            a.json()["purchase_id"],
        )
        assert (row[0]["code"], row[0]["phone"]) == (shop.code, body["member_phone"])
    # The regular's four receipts: none lost, and each answer is the balance right
    # after that receipt was recorded (whichever order they were written in).
    balance, total, rows = await ledger_of(regular)
    assert (balance, total, rows) == (4 * 487, 4 * 487, 4)
    mine = [
        a.json()["points_balance"]
        for (_, b), a in zip(bodies, answers, strict=True)
        if b["member_phone"] == regular
    ]
    assert sorted(mine) == [487, 974, 1461, 1948]


async def test_a_retry_racing_its_original_gets_the_same_answer_and_a_reused_id_409(
    client: Client, products: None
) -> None:
    shop = await make_shop()
    body = receipt()
    other = {**receipt(), "receipt_id": body["receipt_id"]}
    first, retry, reused = await asyncio.gather(
        post(client, shop.pos, body), post(client, shop.pos, body), post(client, shop.pos, other)
    )
    # Whichever arrived first is the receipt; its exact retry gets its answer, and the
    # other use of the id is refused naming the field.
    if reused.status_code == 201:
        assert [first.status_code, retry.status_code] == [409, 409]
        assert first.json()["errors"][0]["field"] == "receipt_id"
    else:
        assert sorted([first.status_code, retry.status_code]) == [200, 201]
        assert first.json() == retry.json()
        assert reused.status_code == 409
        assert reused.json()["errors"][0]["field"] == "receipt_id"
    rows = await fetch(
        "SELECT COUNT(*) AS n FROM purchase WHERE receipt_id = {}", body["receipt_id"]
    )
    assert rows[0]["n"] == 1


async def test_a_bad_receipt_among_others_is_refused_alone(client: Client, products: None) -> None:
    shop, other = await make_shop(), await make_shop()
    good = [receipt() for _ in range(3)]
    bad = receipt(lines=[("NO-SUCH-SKU", 1, "10.00")])
    answers = await asyncio.gather(
        *[post(client, shop.pos, b) for b in good], post(client, other.pos, bad)
    )
    assert [a.status_code for a in answers] == [201, 201, 201, 422]
    assert answers[-1].json()["errors"][0]["field"] == "lines[0].sku"
