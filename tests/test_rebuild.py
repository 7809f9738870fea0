"""``incentives rebuild`` recomputes from the ledger alone exactly what the
incremental path kept, whatever history led there: registrations with and without
a recruiting advisor, receipts dated back into earlier (even closed) months and
replayed, calls that complete tasks, convert them and are undone by a member's
do-not-contact request, months closed in between, and weights changed midway."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
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
