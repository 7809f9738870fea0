"""Imports of a chain from CSV, as HQ runs them: each kind with good and bad lines,
the same file again to no change, a file cut off halfway completed by a re-run, and
purchase history that leaves the books as a replay through the till would."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import httpx

from core.db import fetch
from tests.conftest import (
    FORMULA_1,
    FORMULA_2,
    PROBIOTIC,
    WIPES,
    make_shop,
    unique_code,
    unique_phone,
)
from tests.test_audit import rows
from tests.test_cli import tiantian

Client = httpx.AsyncClient


async def upload(client: Client, hq: dict[str, str], kind: str, text: str) -> dict[str, Any]:
    r = await client.post(
        f"/hq/v1/imports/{kind}",
        content=text.encode(),
        headers={**hq, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def counts(report: dict[str, Any]) -> tuple[int, int, int, int]:
    return report["created"], report["updated"], report["unchanged"], len(report["rejected"])


async def test_stores_good_and_bad_lines_then_no_change(client: Client, hq: dict[str, str]) -> None:
    a, b, c = unique_code("S"), unique_code("S"), unique_code("S")
    text = (
        "\ufeffcode,name,region,timezone,latitude,longitude,o2o\n"
        f"{a},导入一店,华南,Asia/Shanghai,23.1,113.3,true\n"
        f"{b},导入二店,华东,,,,\n"
        f"{c},坏时区店,华东,Mars/Olympus,,,\n"
        "bad code!,坏编号店,华东,,,,\n"
        f"{unique_code('S')},,华东,,,,\n"
        f"{unique_code('S')},NUL\x00店,华东,,,,\n"
    )
    report = await upload(client, hq, "stores", text)
    assert counts(report) == (2, 0, 0, 4)
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [
        (4, "timezone"),
        (5, "code"),
        (6, "name"),
        (7, "line"),
    ]
    stored = (await client.get(f"/hq/v1/stores/{a}", headers=hq)).json()
    assert (stored["region"], stored["latitude"]) == ("华南", 23.1)
    assert counts(await upload(client, hq, "stores", text)) == (0, 0, 2, 4)
    moved = text.replace(f"{b},导入二店,华东", f"{b},导入二店,华北")
    assert counts(await upload(client, hq, "stores", moved)) == (0, 1, 1, 4)
    trail = await rows(client, hq, "store", b)
    assert [e["action"] for e in trail] == ["create", "update"]


async def test_stores_o2o_column_is_stored_under_the_apis_rule(
    client: Client, hq: dict[str, str]
) -> None:
    on, off, kept, bare = (unique_code("S") for _ in range(4))
    text = (
        "code,name,region,latitude,longitude,o2o\n"
        f"{on},接单店,华南,23.1,113.3,true\n"
        f"{off},不接单店,华南,23.2,113.4,false\n"
        f"{kept},留空店,华南,23.3,113.5,\n"
        f"{bare},无坐标店,华南,,,是\n"
    )
    report = await upload(client, hq, "stores", text)
    assert counts(report) == (3, 0, 0, 1)
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [(5, "latitude")]
    assert "O2O" in report["rejected"][0]["message"]

    async def o2o(code: str) -> bool:
        r = await client.get(f"/hq/v1/stores/{code}", headers=hq)
        assert r.status_code == 200, r.text
        return bool(r.json()["o2o"])

    assert [await o2o(c) for c in (on, off, kept)] == [True, False, False]
    assert await fetch("SELECT id FROM store WHERE code = {}", bare) == []
    # The same file again changes nothing, on the stores or on the trail.
    assert counts(await upload(client, hq, "stores", text)) == (0, 0, 3, 1)
    assert len(await rows(client, hq, "store", on)) == 1

    # A line that leaves o2o out keeps what the store had, as a PUT without it does;
    # a store taking orders that loses its position is refused, naming the field.
    r = await client.put(
        f"/hq/v1/stores/{kept}",
        json={
            "name": "留空店",
            "region": "华南",
            "latitude": 23.3,
            "longitude": 113.5,
            "o2o": True,
        },
        headers=hq,
    )
    assert r.status_code == 200
    assert counts(await upload(client, hq, "stores", text)) == (0, 0, 3, 1)
    assert await o2o(kept)
    lost = f"code,name,region,o2o\n{kept},留空店,华南,\n{on},接单店,华南,false\n"
    report = await upload(client, hq, "stores", lost)
    assert counts(report) == (0, 1, 0, 1)
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [(2, "latitude")]
    assert (await o2o(kept), await o2o(on)) == (True, False)
    (last,) = (await rows(client, hq, "store", on))[-1:]
    assert (last["before"]["o2o"], last["after"]["o2o"]) == (True, False)


async def test_advisors_and_products(client: Client, hq: dict[str, str]) -> None:
    shop = await make_shop()
    adv = unique_code("A")
    text = (
        "code,name,phone,store_code,active\n"
        f"{adv},导入顾问,{unique_phone()},{shop.code},true\n"
        f"{unique_code('A')},无店顾问,{unique_phone()},NOSUCH,true\n"
        f"{unique_code('A')},坏号码,12345,{shop.code},true\n"
    )
    report = await upload(client, hq, "advisors", text)
    assert counts(report) == (1, 0, 0, 2)
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [
        (3, "store_code"),
        (4, "phone"),
    ]
    assert counts(await upload(client, hq, "advisors", text)) == (0, 0, 1, 2)
    stored = (await client.get(f"/hq/v1/advisors/{adv}", headers=hq)).json()
    assert stored["store_code"] == shop.code and stored["active"] is True

    sku = unique_code("P")
    text = (
        "sku,name,category,stage,days_of_supply,points_eligible\n"
        f"{sku},3段奶粉,formula,3,15,true\n"
        f"{unique_code('P')},无段奶粉,formula,,15,true\n"
        f"{unique_code('P')},湿巾,care,,,false\n"
    )
    report = await upload(client, hq, "products", text)
    assert counts(report) == (2, 0, 0, 1)
    assert report["rejected"][0]["line"] == 3 and report["rejected"][0]["field"] == "stage"
    assert counts(await upload(client, hq, "products", text)) == (0, 0, 2, 1)
    assert (await client.get(f"/hq/v1/products/{sku}", headers=hq)).json()["stage"] == 3


async def test_members_with_babies(client: Client, hq: dict[str, str], products: None) -> None:
    shop = await make_shop()
    twins, single, bad = unique_phone(), unique_phone(), unique_phone()
    text = (
        "phone,name,store_code,advisor_code,registered_at,baby_birth_date,baby_due_date\n"
        f"{twins},双胞胎妈妈,{shop.code},{shop.advisors[0]},2025-03-01T10:00:00,2025-02-01,\n"
        f"{twins},双胞胎妈妈,{shop.code},{shop.advisors[0]},2025-03-01T10:00:00,2025-02-02,\n"
        f"{single},,{shop.code},,2026-01-05,,2026-12-01\n"
        f"{bad},错店,NOSUCH,,,,\n"
        f"123,错号,{shop.code},,,,\n"
        f"{unique_phone()},错日期,{shop.code},,,2025-13-01,\n"
    )
    report = await upload(client, hq, "members", text)
    assert counts(report) == (2, 0, 0, 3)
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [
        (5, "store_code"),
        (6, "phone"),
        (7, "baby_birth_date"),
    ]
    assert counts(await upload(client, hq, "members", text)) == (0, 0, 2, 3)
    member = (await client.get(f"/pos/v1/members/{twins}", headers=shop.pos)).json()
    assert len(member["babies"]) == 2 and member["owning_advisor"] == shop.advisors[0]
    (row,) = await fetch("SELECT joined_on FROM member WHERE phone = {}", twins)
    assert str(row["joined_on"]) == "2025-03-01"
    # History makes no tasks: no welcome call for a member of long ago.
    tasks = await fetch(
        "SELECT COUNT(*) AS n FROM task t JOIN member m ON m.id = t.member WHERE m.phone = {}",
        twins,
    )
    assert tasks[0]["n"] == 0
    # A third baby for the twins' mother is an update.
    more = text + f"{twins},双胞胎妈妈,{shop.code},,,2027-01-01,\n"
    assert counts(await upload(client, hq, "members", more))[:3] == (0, 1, 1)


def purchases_csv(shop_code: str, receipts: list[dict[str, Any]]) -> str:
    out = ["receipt_id,store_code,member_phone,advisor_code,purchased_at,sku,quantity,amount"]
    for r in receipts:
        for line in r["lines"]:
            out.append(
                f"{r['receipt_id']},{shop_code},{r['member_phone']},{r.get('advisor_code', '')},"
                f"{r['purchased_at']},{line['sku']},{line['quantity']},{line['amount']}"
            )
    return "\n".join(out) + "\n"


SKUS = [(FORMULA_1, "358.00"), (FORMULA_2, "368.00"), (PROBIOTIC, "129.00"), (WIPES, "19.90")]


def history(phones: list[str], advisor: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` receipts over the last two years, lines of one to three SKUs, in time order."""
    rng = random.Random(seed)
    start = datetime(2024, 11, 1, 9, 0)
    times = sorted(start + timedelta(minutes=rng.randrange(0, 740 * 24 * 60)) for _ in range(n))
    receipts = []
    for i, when in enumerate(times):
        picked = rng.sample(SKUS, rng.randint(1, 3))
        receipts.append(
            {
                "receipt_id": f"H{seed}-{i:05d}",
                "member_phone": rng.choice(phones),
                "purchased_at": when.isoformat(timespec="seconds"),
                "advisor_code": advisor if rng.random() < 0.5 else "",
                "lines": [
                    {"sku": sku, "quantity": rng.randint(1, 3), "amount": price}
                    for sku, price in picked
                ],
            }
        )
    return receipts


async def books(store_code: str) -> dict[str, Any]:
    """What the history left, member by member in phone order, and the store's days."""
    members = await fetch(
        "SELECT m.points_balance, m.last_purchase_on, m.last_formula_stage, m.tier,"
        " (SELECT COUNT(*) FROM purchase p WHERE p.member = m.id AND p.repeat) AS repeats,"
        " (SELECT COALESCE(SUM(earned), 0) FROM points_lot l WHERE l.member = m.id) AS lots"
        " FROM member m JOIN store s ON s.id = m.home_store WHERE s.code = {}"
        " ORDER BY m.phone",
        store_code,
    )
    days = await fetch(
        "SELECT d.period, d.receipts, d.revenue_fen, d.repeat_fen FROM store_day d"
        " JOIN store s ON s.id = d.store WHERE s.code = {} ORDER BY d.period",
        store_code,
    )
    return {"members": [dict(m) for m in members], "days": [dict(d) for d in days]}


async def test_purchase_history_equals_its_replay_through_the_till(
    client: Client, hq: dict[str, str], products: None
) -> None:
    imported, replayed = await make_shop(), await make_shop()
    n = 20
    phones_a = sorted(unique_phone() for _ in range(n))
    phones_b = sorted(unique_phone() for _ in range(n))
    receipts = history(phones_a, imported.advisors[0], 240, seed=random.randrange(10**6))
    text = purchases_csv(imported.code, receipts)
    report = await upload(client, hq, "purchases", text)
    assert counts(report) == (240, 0, 0, 0), report["rejected"][:3]
    again = await upload(client, hq, "purchases", text)
    assert counts(again) == (0, 0, 240, 0)

    to_b = dict(zip(phones_a, phones_b, strict=True))
    replay = [
        {
            **r,
            "member_phone": to_b[r["member_phone"]],
            "purchased_at": r["purchased_at"] + "+08:00",
            **(
                {"advisor_code": replayed.advisors[0]}
                if r["advisor_code"]
                else {"advisor_code": None}
            ),
        }
        for r in receipts
    ]
    for r in replay:
        if r["advisor_code"] is None:
            del r["advisor_code"]
    for i in range(0, len(replay), 100):
        batch = await client.post(
            "/pos/v1/purchases/batch",
            json={"purchases": replay[i : i + 100]},
            headers=replayed.pos,
        )
        assert batch.status_code == 200, batch.text
    mine, theirs = await books(imported.code), await books(replayed.code)
    assert mine["members"] == theirs["members"]
    assert mine["days"] == theirs["days"]
    assert sum(m["points_balance"] for m in mine["members"]) > 0

    # History made no tasks and booked no score facts; the till's replay did both.
    for code, expected in ((imported.code, 0), (replayed.code, None)):
        facts = await fetch(
            "SELECT COUNT(*) AS n FROM score_fact f JOIN store s ON s.id = f.store"
            " WHERE s.code = {}",
            code,
        )
        if expected is not None:
            assert facts[0]["n"] == expected
        else:
            assert facts[0]["n"] > 0


async def test_a_chunk_of_several_stores_writes_each_receipt_at_its_own_store(
    client: Client, hq: dict[str, str], products: None
) -> None:
    """One chunk, two stores written by one set of statements: a receipt id is the
    till's, so the same id at two stores is two receipts; a member who first bought at
    the store later in the file joins there; RN3 counts across stores, as at the till."""
    first, second = sorted([await make_shop(), await make_shop()], key=lambda s: s.code)
    both, only = unique_phone(), unique_phone()
    at_first = [
        {
            "receipt_id": "R-1",
            "member_phone": both,
            "purchased_at": "2026-03-05T10:00:00",
            "lines": [{"sku": FORMULA_1, "quantity": 1, "amount": "358.00"}],
        },
        {
            "receipt_id": "R-2",
            "member_phone": only,
            "purchased_at": "2026-03-06T10:00:00",
            "lines": [{"sku": WIPES, "quantity": 2, "amount": "19.90"}],
        },
    ]
    at_second = [
        {
            "receipt_id": "R-1",
            "member_phone": both,
            "purchased_at": "2026-03-01T10:00:00",
            "lines": [{"sku": PROBIOTIC, "quantity": 1, "amount": "129.00"}],
        },
    ]
    text = (
        purchases_csv(first.code, at_first)
        + purchases_csv(second.code, at_second).split("\n", 1)[1]
    )
    report = await upload(client, hq, "purchases", text)
    assert counts(report) == (3, 0, 0, 0), report["rejected"]
    assert counts(await upload(client, hq, "purchases", text)) == (0, 0, 3, 0)

    written = await fetch(
        "SELECT s.code, p.receipt_id, m.phone, p.total_fen, p.points_earned, p.repeat"
        " FROM purchase p JOIN store s ON s.id = p.store JOIN member m ON m.id = p.member"
        " WHERE s.code IN ({}, {}) ORDER BY p.purchased_at",
        first.code,
        second.code,
    )
    assert [(w["code"], w["receipt_id"], w["phone"], w["total_fen"]) for w in written] == [
        (second.code, "R-1", both, 12900),
        (first.code, "R-1", both, 35800),
        (first.code, "R-2", only, 1990),
    ]
    # Bought again four days after the first purchase, at another store: a repeat.
    assert [w["repeat"] for w in written] == [False, True, False]
    member = await fetch(
        "SELECT s.code, m.points_balance FROM member m JOIN store s ON s.id = m.home_store"
        " WHERE m.phone = {}",
        both,
    )
    assert member[0]["code"] == second.code
    assert member[0]["points_balance"] == written[0]["points_earned"] + written[1]["points_earned"]
    days = await fetch(
        "SELECT s.code, SUM(d.receipts) AS n FROM store_day d JOIN store s ON s.id = d.store"
        " WHERE s.code IN ({}, {}) AND length(d.period) = 10 GROUP BY s.code ORDER BY s.code",
        first.code,
        second.code,
    )
    assert [(d["code"], d["n"]) for d in days] == [(first.code, 2), (second.code, 1)]

    # The same id at the first store with other lines is refused there, naming the id.
    changed = purchases_csv(first.code, [{**at_first[0], "purchased_at": "2026-03-07T10:00:00"}])
    refused = await upload(client, hq, "purchases", changed)
    assert counts(refused)[:3] == (0, 0, 0)
    assert refused["rejected"][0]["field"] == "receipt_id"


async def test_bad_purchase_lines_and_a_cut_off_file(
    client: Client, hq: dict[str, str], products: None
) -> None:
    shop = await make_shop()
    phones = [unique_phone() for _ in range(5)]
    receipts = history(phones, shop.advisors[1], 40, seed=7 + random.randrange(10**6))
    text = purchases_csv(shop.code, receipts)
    lines = text.splitlines(keepends=True)
    # Cut off in the middle of a line, two thirds in.
    cut = "".join(lines[: len(lines) * 2 // 3]) + lines[len(lines) * 2 // 3][:17]
    first = await upload(client, hq, "purchases", cut)
    created = first["created"]
    assert 0 < created < 40
    assert first["rejected"][-1]["message"].startswith("the file ends mid-line")
    second = await upload(client, hq, "purchases", text)
    assert (second["created"], second["unchanged"], second["rejected"]) == (
        40 - created,
        created,
        [],
    )

    bad = (
        "receipt_id,store_code,member_phone,advisor_code,purchased_at,sku,quantity,amount\n"
        f"B1,{shop.code},{phones[0]},,2026-10-01T10:00:00,{FORMULA_1},1,358.00\n"
        f"B1,{shop.code},{phones[0]},,2026-10-01T10:00:00,NOSKU,1,10.00\n"
        f"B2,{shop.code},{phones[1]},,2026-10-02T10:00:00,{FORMULA_1},zero,358.00\n"
        f"B3,NOSUCH,{phones[1]},,2026-10-02T10:00:00,{FORMULA_1},1,358.00\n"
        f"B4,{shop.code},{phones[2]},,2099-10-02T10:00:00,{FORMULA_1},1,358.00\n"
        f"B5,{shop.code},{phones[2]},,2026-10-03T10:00:00,{FORMULA_2},1,368.00\n"
    )
    report = await upload(client, hq, "purchases", bad)
    assert counts(report) == (1, 0, 0, 5)
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [
        (2, "receipt_id"),
        (3, "sku"),
        (4, "quantity"),
        (5, "store_code"),
        (6, "purchased_at"),
    ]


async def test_scored_history_books_facts_and_the_command_line(
    client: Client, hq: dict[str, str], products: None, tmp_path: Any
) -> None:
    shop = await make_shop()
    phones = [unique_phone() for _ in range(3)]
    receipts = history(phones, shop.advisors[0], 12, seed=11 + random.randrange(10**6))
    for r in receipts:
        r["advisor_code"] = shop.advisors[0]
    path = tmp_path / "history.csv"
    path.write_text("\ufeff" + purchases_csv(shop.code, receipts), encoding="utf-8")
    done = tiantian("import", "purchases", str(path), "--score")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "created 12, updated 0, unchanged 0, rejected 0"
    assert "lines/s" in done.stderr
    facts = await fetch(
        "SELECT COUNT(*) AS n FROM score_fact f JOIN store s ON s.id = f.store"
        " WHERE s.code = {} AND f.kind = 'points'",
        shop.code,
    )
    earning = await fetch(
        "SELECT COUNT(*) AS n FROM purchase p JOIN store s ON s.id = p.store"
        " WHERE s.code = {} AND p.points_earned > 0",
        shop.code,
    )
    # One points fact per receipt that earned (wipes alone earn none).
    assert facts[0]["n"] == earning[0]["n"] > 0
    again = tiantian("import", "purchases", str(path), "--score")
    assert again.stdout.splitlines()[0] == "created 0, updated 0, unchanged 12, rejected 0"


async def test_a_file_that_cannot_be_read_is_refused_whole(
    client: Client, hq: dict[str, str]
) -> None:
    r = await client.post(
        "/hq/v1/imports/stores",
        content=b"code,name\nS1,x\n",
        headers={**hq, "Content-Type": "text/csv"},
    )
    assert r.status_code in (400, 422) and "region" in r.text
    r = await client.post(
        "/hq/v1/imports/stores", content=b"\xff\xfe", headers={**hq, "Content-Type": "text/csv"}
    )
    assert r.status_code in (400, 422)
    r = await client.post("/hq/v1/imports/stores", json={}, headers=hq)
    assert r.status_code == 400


async def test_small_chunks_never_split_a_receipt(
    client: Client, hq: dict[str, str], products: None
) -> None:
    from core.csvfile import read_csv
    from members.imports import COLUMNS, run_import

    shop = await make_shop()
    phones = [unique_phone() for _ in range(4)]
    receipts = history(phones, shop.advisors[0], 30, seed=23 + random.randrange(10**6))
    text = purchases_csv(shop.code, receipts)
    columns = COLUMNS["purchases"]
    # Chunks of three lines: receipts of one to three lines straddle every boundary.
    report = await run_import(
        "purchases", read_csv(text.encode(), columns.required, columns.optional), chunk_lines=3
    )
    assert (report.created, report.rejected) == (30, [])
    again = await upload(client, hq, "purchases", text)
    assert counts(again) == (0, 0, 30, 0)
