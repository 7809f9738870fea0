"""The league tables' quick paths give exactly the ranks of a plain window-function
query over everyone in scope: the top N read by a top-N sort, the caller's line
counted, last period's ranks of a whole top, per active advisor and with a
contest's own weights; ties (1, 2, 2, 4), advisors with no line, a store with no
staff."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from core.db import fetch
from core.periods import Period, parse_period
from incentives import ladders as kept_tables
from incentives.ladders import LADDERS, Ladder, Ladders, with_ranks
from incentives.queries import league_table, my_ranks
from incentives.ranking import ADVISORS, STORES, rank_all
from incentives.rules import Weights
from members import registry
from members.schemas import AdvisorIn
from members.scopes import Scope
from tests.conftest import BACKEND, make_shop, unique_phone
from tests.test_incentives import W47, buy, region

WEEK = "2026-W47"


async def plain_ranks(
    subject: str, area: str, weights: Weights, per_advisor: bool
) -> dict[int, tuple[int, int]]:
    """id -> (rank, score) by one window over everyone in the region, the way the
    contract words it (no line counts nought; per advisor, half-up by integers)."""
    w = [weights.of(k) for k in ("new_member", "points", "task_done", "task_converted")]
    value = (
        "COALESCE(t.new_members, 0) * {} + COALESCE(t.points, 0) * {}"
        " + COALESCE(t.tasks_done, 0) * {} + COALESCE(t.tasks_converted, 0) * {}"
    )
    if subject == "advisor":
        rows = await fetch(
            f"SELECT u.id, {value} AS score FROM advisor u JOIN store s ON s.id = u.store"
            " LEFT JOIN advisor_score t ON t.advisor = u.id AND t.period = {}"
            " WHERE s.region = {} AND (u.active OR t.id IS NOT NULL)",
            *w,
            WEEK,
            area,
        )
    else:
        n = "(CASE WHEN COALESCE(c.n, 0) > 1 THEN c.n ELSE 1 END)"
        score = f"(({value}) * 2 + {n}) / (2 * {n})" if per_advisor else value
        rows = await fetch(
            f"SELECT u.id, {score} AS score FROM store u"
            " LEFT JOIN store_score t ON t.store = u.id AND t.period = {}"
            " LEFT JOIN (SELECT store, COUNT(*) AS n FROM advisor WHERE active GROUP BY store)"
            " c ON c.store = u.id WHERE u.region = {}",
            *w,
            WEEK,
            area,
        )
    scores = {int(r["id"]): int(r["score"]) for r in rows}
    return {i: (1 + sum(1 for v in scores.values() if v > s), s) for i, s in scores.items()}


def as_pairs(lines: list[Any]) -> list[tuple[int, int, int]]:
    return [(line.id, line.rank, line.score) for line in lines]


async def test_quick_paths_rank_as_one_window_does(
    client: httpx.AsyncClient, products: None
) -> None:
    area = region()
    shops = [await make_shop(area) for _ in range(4)]
    quiet = await make_shop(area)  # no sales: its advisors and itself score nought
    # Points by advisor, with ties at the top, in the middle and at the bottom.
    sales = [300, 200, 200, 100, 100, 50, 400, 200]
    for i, yuan in enumerate(sales):
        shop = shops[i // 2]
        await buy(client, shop, shop.advisors[i % 2], yuan, W47)
    scope = Scope(f"region:{area}", "region", region=area)
    advisors = [int(r["id"]) for r in await fetch("SELECT id FROM advisor ORDER BY id")]
    stores = [int(r["id"]) for r in await fetch("SELECT id FROM store ORDER BY id")]
    contest = Weights(new_member=500, points=3, task_done=0, task_converted=0)
    default = Weights(new_member=100, points=10, task_done=0, task_converted=0)
    cases = [
        (ADVISORS, "advisor", contest, False, advisors),
        (STORES, "store", default, True, stores),
        (STORES, "store", contest, False, stores),
    ]
    for subject, name, weights, per_advisor, ids in cases:
        expected = await plain_ranks(name, area, weights, per_advisor)
        ordered = sorted(expected, key=lambda i: (-expected[i][1], i))
        everyone = [i for i in ids if i in expected]
        asked_sets = [[], everyone[-1:], everyone[:3], everyone]
        asked_sets.append([*everyone[:2], max(ids) + 1000])  # not in scope: absent
        for limit in range(len(ordered) + 2):
            for asked in asked_sets:
                top, own = await rank_all(
                    subject, scope, [WEEK], weights, limit, asked, per_advisor
                )
                want = [(i, *expected[i]) for i in ordered[:limit]]
                assert as_pairs(top) == want, (name, limit, asked)
                assert {i: (r.rank, r.score) for i, r in own.items()} == {
                    i: expected[i] for i in asked if i in expected
                }, (name, limit, asked)
    assert quiet.code  # its lines were ranked above as nought


async def test_region_table_and_me_as_one_window_does(
    client: httpx.AsyncClient, products: None
) -> None:
    area = region()
    shops = [await make_shop(area) for _ in range(3)]
    for i, yuan in enumerate([120, 300, 120, 90, 300, 10]):
        shop = shops[i // 2]
        await buy(client, shop, shop.advisors[i % 2], yuan, W47)
    scope = Scope(f"region:{area}", "region", region=area)
    expected = await plain_ranks("advisor", area, Weights(100, 10, 0, 0), False)
    ordered = sorted(expected, key=lambda i: (-expected[i][1], i))
    period = parse_period(WEEK)
    for limit in (1, 2, 3, 4, 6):
        for me in ordered:
            table = await league_table(ADVISORS, scope, period, limit, [me])
            want = [(i, *expected[i]) for i in ordered[:limit]]
            assert as_pairs(table.entries) == want
            assert as_pairs(table.mine) == [(me, *expected[me])]


async def test_a_kept_table_follows_every_score_and_registry_change(
    client: httpx.AsyncClient, products: None, hq: dict[str, str]
) -> None:
    """PostgreSQL keeps a table ranked in memory; each change to the scores it ranks
    or to who is in its scope is told to the process, which ranks it again."""
    area = region()
    shops = [await make_shop(area) for _ in range(3)]
    for i, yuan in enumerate([120, 300, 120, 90, 300, 10]):
        await buy(client, shops[i // 2], shops[i // 2].advisors[i % 2], yuan, W47)
    scope = Scope(f"region:{area}", "region", region=area)
    period = parse_period(WEEK)
    default = Weights(100, 10, 0, 0)

    async def settles() -> None:
        """Until the kept table is the plain window's (a notification takes a moment)."""
        for _ in range(60):
            expected = await plain_ranks("advisor", area, default, False)
            ordered = sorted(expected, key=lambda i: (-expected[i][1], i))
            me = ordered[-1]
            table = await league_table(ADVISORS, scope, period, len(ordered), [me])
            shown = await client.get(
                "/v1/leaderboards/advisors",
                params={"scope": f"region:{area}", "period": WEEK, "limit": len(ordered)},
                headers=hq,
            )
            ranks = [(e["advisor_id"], e["rank"]) for e in shown.json()["entries"]]
            if as_pairs(table.entries) == [(i, *expected[i]) for i in ordered] and ranks == [
                (i, expected[i][0]) for i in ordered
            ]:
                assert as_pairs(table.mine) == [(me, *expected[me])]
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the table never showed the change")

    await LADDERS.start(ttl_seconds=60, fresh_seconds=0)  # exact at once: no slack
    try:
        assert LADDERS.enabled == (BACKEND == "postgres")  # SQLite: ranked in SQL each time
        await settles()
        await buy(client, shops[2], shops[2].advisors[1], 500, W47)  # last to first
        await settles()
        await registry.put_advisor(  # to a store of another region: out of this table
            shops[0].advisors[1],
            AdvisorIn(name="顾问1", phone=unique_phone(), store_code=(await make_shop()).code),
        )
        await settles()
        mine = [await my_ranks(a.id, period) for a in await league_lines(scope, period)]
    finally:
        await LADDERS.stop()
    # An advisor's own ranks (store, region, country) read off kept tables, as in SQL.
    assert [await my_ranks(a.id, period) for a in await league_lines(scope, period)] == mine


async def league_lines(scope: Scope, period: Period) -> list[Any]:
    return (await league_table(ADVISORS, scope, period, 10, [])).entries


class _Listening:
    """Stands for the notification connection: the kept tables are on."""

    def is_closed(self) -> bool:
        return False


async def test_a_table_a_sale_changed_is_ranked_again_within_its_fresh_seconds(
    monkeypatch: Any,
) -> None:
    """Every sale changes the month: a busy chain would re-rank the national table for
    nearly every request. A changed table is answered as kept for ``fresh_seconds``,
    then ranked again by the first request after; an unrelated month changes nothing;
    a registry change drops everything at once."""
    tables = Ladders()
    tables._conn = _Listening()
    tables._ttl, tables._fresh = 300.0, 3.0
    now = [1000.0]
    monkeypatch.setattr(kept_tables.time, "monotonic", lambda: now[0])
    rankings: list[int] = []

    async def rank() -> Ladder:
        rankings.append(len(rankings) + 1)
        n = len(rankings)
        return Ladder.of(with_ranks({"id": [1, 2], "score": [10 * n, 5], "rank": [0, 0]}))

    async def score_of_first() -> int:
        ladder = await tables.get("national", ["2026-11"], rank)
        assert ladder is not None
        return ladder.score_at(0)

    assert await score_of_first() == 10
    tables.forget({"2026-11"})  # a sale
    now[0] += 2.0
    assert (await score_of_first(), rankings) == (10, [1])  # within the slack: as kept
    now[0] += 1.5
    assert (await score_of_first(), rankings) == (20, [1, 2])  # past it: ranked again
    tables.forget({"2026-10"})
    now[0] += 60.0
    assert (await score_of_first(), rankings) == (20, [1, 2])  # another month's sale
    tables.forget(None)  # an advisor moved
    assert (await score_of_first(), rankings) == (30, [1, 2, 3])
