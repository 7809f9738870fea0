"""``incentives rebuild`` recomputes from the ledger alone exactly what the
incremental path kept, whatever history led there: registrations with and without
a recruiting advisor, receipts dated back into earlier (even closed) months and
replayed, calls that complete tasks, convert them and are undone by a member's
do-not-contact request, months closed in between, and weights changed midway."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db import fetch
from core.periods import month_key
from incentives import statements
from incentives.rebuild import rebuild
from incentives.rules import Weights, load_weights, set_weights
from tasks.outcomes import record_outcome
from tasks.schemas import OutcomeIn
from tests.conftest import FORMULA_1, PROBIOTIC, make_shop, unique_code, unique_phone

START = datetime.fromisoformat("2026-09-01T09:00:00+08:00")
NOW = datetime.fromisoformat("2026-11-20T11:00:00+08:00")  # just before the suite's clock
SPAN_HOURS = int((NOW - START).total_seconds() // 3600)


async def snapshot() -> dict[str, Any]:
    """Every total of the league tables, and every open month's statement."""
    totals = {}
    for table, subject in (("advisor_score", "advisor"), ("store_score", "store")):
        rows = await fetch(
            f"SELECT period, {subject} AS who, new_members, points, tasks_done,"
            f" tasks_converted, score FROM {table} ORDER BY period, {subject}"
        )
        totals[table] = [tuple(int(v) if k != "period" else v for k, v in r.items()) for r in rows]
    months = [r["m"] for r in await fetch("SELECT DISTINCT booked_month AS m FROM score_fact")]
    bills = {}
    for m in sorted(months):
        statement = await statements.statement(m)
        bills[m] = [statements.line_dict(line) for line in statement.lines]
    return {"totals": totals, "statements": bills}


hours = st.integers(min_value=0, max_value=SPAN_HOURS)
step = st.one_of(
    st.tuples(st.just("join"), st.integers(0, 1), st.integers(-1, 3), hours),
    st.tuples(
        st.just("buy"),
        st.integers(0, 1),
        st.integers(-1, 3),
        st.integers(-1, 5),  # which earlier member, -1 a new phone
        st.integers(1, 900),
        hours,
        st.booleans(),  # replay it
    ),
    st.tuples(
        st.just("call"),
        st.integers(0, 50),
        st.sampled_from(["reached", "purchased", "no_answer", "do_not_contact"]),
        st.integers(-48, 48),
    ),
    st.tuples(st.just("close"), st.sampled_from(["2026-09"])),
    st.tuples(st.just("weights"), st.integers(0, 30)),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(step, min_size=3, max_size=14))
async def test_rebuild_equals_incremental(
    client: httpx.AsyncClient, products: None, history: list[tuple[Any, ...]]
) -> None:
    shops = [await make_shop(f"区{unique_code('H')}") for _ in range(2)]
    advisors = [code for shop in shops for code in shop.advisors]
    phones: list[tuple[int, str]] = []  # (shop index, phone)
    months: set[str] = set()
    weights_before = await load_weights()
    for op in history:
        if op[0] == "join":
            _, s, a, at = op
            shop = shops[s]
            phone = unique_phone()
            when = START + timedelta(hours=at)
            body = {"phone": phone, "name": "会员", "registered_at": when.isoformat(), "babies": []}
            if a >= 0:
                body["advisor_code"] = shop.advisors[a % 2]
            r = await client.post("/pos/v1/members", json=body, headers=shop.pos)
            assert r.status_code == 201, r.text
            phones.append((s, phone))
            months.add(month_key(when.date()))
        elif op[0] == "buy":
            _, s, a, m, yuan, at, replay = op
            shop = shops[s]
            phone = phones[m % len(phones)][1] if m >= 0 and phones else unique_phone()
            when = START + timedelta(hours=at)
            body = {
                "receipt_id": unique_code("R"),
                "member_phone": phone,
                "purchased_at": when.isoformat(),
                "lines": [
                    {"sku": FORMULA_1, "quantity": 1, "amount": f"{yuan}.50"},
                    {"sku": PROBIOTIC, "quantity": 1, "amount": "19.90"},
                ],
            }
            if a >= 0:
                body["advisor_code"] = shop.advisors[a % 2]
            for _ in range(2 if replay else 1):
                r = await client.post("/pos/v1/purchases", json=body, headers=shop.pos)
                assert r.status_code in (200, 201), r.text
            if m < 0 or not phones:
                phones.append((s, phone))
            months.add(month_key(when.date()))
        elif op[0] == "call":
            _, pick, result, shift = op
            tasks = await fetch(
                "SELECT t.id, t.assignee, t.created_at FROM task t JOIN advisor a"
                " ON a.id = t.assignee WHERE a.code IN ({}, {}, {}, {}) ORDER BY t.id",
                *advisors,
            )
            if not tasks:
                continue
            task = tasks[pick % len(tasks)]
            at = NOW + timedelta(hours=shift)
            answer = await _call(task, result, at)
            if answer is not None:
                months.add(month_key(at.date()))
        elif op[0] == "close":
            r = await client.post(f"/hq/v1/periods/{op[1]}/close", headers=await _hq(client))
            assert r.status_code == 200, r.text
        else:
            base = await load_weights()
            await set_weights(Weights(base.new_member, op[1], base.task_done, base.task_converted))

    before = await snapshot()
    for month in sorted(months):
        await rebuild(month)
    assert await snapshot() == before
    await set_weights(weights_before)


async def _call(task: dict[str, Any], result: str, at: datetime) -> Any:
    from core.errors import Conflict, InvalidInput

    try:
        return await record_outcome(
            task["assignee"],
            "Asia/Shanghai",
            task["id"],
            OutcomeIn(
                client_outcome_id=unique_code("O"),
                channel="phone",
                result=result,  # type: ignore[arg-type]
                recorded_at=at,
            ),
        )
    except (Conflict, InvalidInput):
        return None  # a call the task cannot take (done already, before it existed)


_hq_headers: dict[str, str] = {}


async def _hq(client: httpx.AsyncClient) -> dict[str, str]:
    if not _hq_headers:
        from members import accounts
        from tests.conftest import PASSWORD, login

        phone = unique_phone()
        await accounts.create_user("hq", phone, PASSWORD)
        _hq_headers.update(await login(client, phone))
    return _hq_headers


# --- slices: the tills book between them -----------------------------------------

# A month no other test books in, so that its slices are few: one advisor (or store)
# each, with a receipt booked after every one.
SLICED_MONTH = "2026-04"


class Tills:
    """Receipts (and a new member now and then) at a few shops, on random days of a
    month, as the tills send them while a rebuild or a re-weighting runs."""

    def __init__(self, client: httpx.AsyncClient, shops: list[Any], seed: int) -> None:
        self.client, self.shops, self.rng = client, shops, random.Random(seed)
        self.booked = 0

    async def book(self, month: str = SLICED_MONTH) -> None:
        shop = self.rng.choice(self.shops)
        advisor = self.rng.choice(shop.advisors)
        day = f"{month}-{self.rng.randint(1, 20):02d}"
        if self.rng.random() < 0.3:
            r = await self.client.post(
                "/pos/v1/members",
                json={
                    "phone": unique_phone(),
                    "name": "会员",
                    "registered_at": f"{day}T09:00:00+08:00",
                    "babies": [],
                    "advisor_code": advisor,
                },
                headers=shop.pos,
            )
            assert r.status_code == 201, r.text
        r = await self.client.post(
            "/pos/v1/purchases",
            json={
                "receipt_id": unique_code("R"),
                "member_phone": unique_phone(),
                "advisor_code": advisor,
                "purchased_at": f"{day}T10:00:00+08:00",
                "lines": [
                    {"sku": FORMULA_1, "quantity": 1, "amount": f"{self.rng.randint(50, 400)}.00"}
                ],
            },
            headers=shop.pos,
        )
        assert r.status_code == 201, r.text
        self.booked += 1

    async def between(self) -> None:
        if self.booked < 60:
            await self.book(self.rng.choice([SLICED_MONTH, "2026-11"]))


async def _ids(table: str, codes: list[str]) -> list[int]:
    rows = await fetch(
        f"SELECT id FROM {table} WHERE code IN ({', '.join('{}' for _ in codes)}) ORDER BY id",
        *codes,
    )
    return [int(row["id"]) for row in rows]


async def _from_scratch(month: str) -> dict[str, Any]:
    """Every total after the month's were deleted and rebuilt in one pass."""
    from incentives.rebuild import _days_of, _weeks_of

    periods = [d.isoformat() for d in _days_of(month)] + _weeks_of(month) + [month]
    marks = ", ".join("{}" for _ in periods)
    for table in ("advisor_score", "store_score"):
        await fetch(f"DELETE FROM {table} WHERE period IN ({marks})", *periods)
    await rebuild(month)
    return await snapshot()


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_sliced_rebuild_with_receipts_between_slices_equals_one_from_scratch(
    client: httpx.AsyncClient, products: None, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    from incentives import rebuild as rebuilding
    from incentives import slices

    monkeypatch.setattr(rebuilding, "FIRST_SLICE", 1)
    monkeypatch.setattr(slices, "SLICE_SECONDS", 0.0)  # every slice stays one subject
    shops = [await make_shop(f"区{unique_code('S')}") for _ in range(3)]
    tills = Tills(client, shops, seed)
    for _ in range(10):
        await tills.book()
    advisors = await _ids("advisor", [code for shop in shops for code in shop.advisors])
    stores = await _ids("store", [shop.code for shop in shops])
    # Totals made wrong, as a bug would: counts off, lines lost, a line no fact backs.
    await fetch(
        "UPDATE advisor_score SET points = points + 7, score = score + 70"
        " WHERE period LIKE '2026-04%' AND advisor = {}",
        advisors[0],
    )
    await fetch("DELETE FROM store_score WHERE period = '2026-04' AND store = {}", stores[1])
    await fetch(
        "INSERT INTO advisor_score (period, advisor, new_members, points, tasks_done,"
        " tasks_converted, score) VALUES ('2026-04-30', {}, 1, 2, 3, 4, 5)"
        " ON CONFLICT (period, advisor) DO NOTHING",
        advisors[-1],
    )

    report = await rebuild(SLICED_MONTH, tills.between)

    assert report.slicing.slices >= len(advisors) + len(stores)
    assert tills.booked >= 10 + len(advisors) + len(stores)
    assert report.advisor_rows > 0 and report.store_rows > 0  # the wrong totals put right
    sliced = await snapshot()
    monkeypatch.setattr(slices, "SLICE_SECONDS", 100.0)
    assert await _from_scratch(SLICED_MONTH) == sliced


async def test_a_weight_change_rescores_every_total_while_receipts_arrive(
    client: httpx.AsyncClient, products: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from incentives import rules

    monkeypatch.setattr(rules, "FIRST_RESCORE", 3)  # small slices, growing with time
    shops = [await make_shop(f"区{unique_code('W')}") for _ in range(2)]
    tills = Tills(client, shops, 5)
    for _ in range(6):
        await tills.book()
    before = await load_weights()
    changed = Weights(150, 13, before.task_done, 0)  # 1.50 a new member, 0.13 a point
    try:
        await set_weights(changed, tills.between)
        assert tills.booked > 6 + 4  # receipts went in between the slices

        for table in ("advisor_score", "store_score"):
            rows = await fetch(
                f"SELECT COUNT(*) AS n FROM {table} WHERE score <> CAST(new_members AS BIGINT)"
                " * {} + points * {} + CAST(tasks_done AS BIGINT) * {}"
                " + CAST(tasks_converted AS BIGINT) * {}",
                changed.new_member,
                changed.points,
                changed.task_done,
                changed.task_converted,
            )
            assert int(rows[0]["n"]) == 0, table
        advisor = (await _ids("advisor", [shops[0].advisors[0]]))[0]
        line = await fetch(
            "SELECT new_members, points, score FROM advisor_score WHERE period = {}"
            " AND advisor = {}",
            SLICED_MONTH,
            advisor,
        )
        if line:
            row = line[0]
            assert int(row["score"]) == 150 * int(row["new_members"]) + 13 * int(row["points"])
        reweighted = await snapshot()
        assert await _from_scratch(SLICED_MONTH) == reweighted
    finally:
        await set_weights(before)
