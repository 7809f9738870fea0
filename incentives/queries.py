"""The read side: league tables, an advisor's own score, the ledger behind a line.

``rank_change`` is the rank in the previous period of the same length minus the rank
now (positive: moved up), ``None`` for whoever had no score line then. How the ranks
are found is ``incentives.ranking``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.db import fetch
from core.periods import Period, previous
from incentives.ladders import LADDERS, Ladder, period_ladder, rank_all_kept
from incentives.ranking import (
    ADVISORS,
    Ranked,
    Subject,
    rank_of_nothing,
    ranks_by_count,
    scope_ranks,
    top_lines,
)
from incentives.rules import load_weights
from members import queries as members
from members.accounts import Principal
from members.scopes import Scope
from tasks.queries import completion_by_advisor

MAX_LIMIT = 500


# --- who is looking ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Viewer:
    advisor_id: int | None
    store_ids: frozenset[int]
    regions: frozenset[str] | None  # whose advisors' names they see; None: everyone's


async def viewer_of(principal: Principal) -> Viewer:
    if principal.role == "hq":
        return Viewer(None, frozenset(), None)
    if principal.role == "region":
        # Names in full inside the region; no line of "mine" (the region is not a store).
        return Viewer(None, frozenset(), frozenset({principal.region or ""}))
    stores = await store_cards(principal.store_ids)
    regions = frozenset(card["region"] for card in stores.values())
    return Viewer(principal.advisor_id, principal.store_ids, regions)


def shown_name(viewer: Viewer, name: str, region: str, store_code: str) -> str:
    """Advisors and owners see full names within their own region; elsewhere a name is
    its first character and the store's code."""
    if viewer.regions is None or region in viewer.regions:
        return name
    return f"{name[:1]}* ({store_code})"


async def _in_scope(subject: Subject, scope: Scope, subject_id: int) -> bool:
    if scope.kind == "national":
        return True
    if subject is ADVISORS:
        card = (await advisor_cards([subject_id])).get(subject_id)
        store_id = None if card is None else card["store_id"]
    else:
        store_id = subject_id
    if store_id is None:
        return False
    if scope.kind == "store":
        return bool(store_id == scope.store_id)
    found = (await store_cards([store_id])).get(store_id)
    return found is not None and found["region"] == scope.region


# --- league tables -----------------------------------------------------------


@dataclass(slots=True)
class Table:
    entries: list[Ranked]
    mine: list[Ranked] = field(default_factory=list)
    # The kept ladders (this period's, last period's) the entries were read off: the
    # same pair gives the same entries.
    kept: tuple[Ladder, Ladder] | None = None


async def league_table(
    subject: Subject,
    scope: Scope,
    period: Period,
    limit: int,
    mine: list[int],
    per_advisor: bool = False,
) -> Table:
    """The top ``limit`` of the scope for the period, with rank changes, and the lines
    of ``mine`` (the caller's own advisor or stores) wherever they stand."""
    mine = [m for m in mine if await _in_scope(subject, scope, m)]
    before = previous(period).name
    now = None if per_advisor else await period_ladder(subject, scope, period.name)
    kept: tuple[Ladder, Ladder] | None = None
    if per_advisor:
        weights = await load_weights()
        top, own = await rank_all_kept(subject, scope, [period.name], weights, limit, mine, True)
        _, earlier = await rank_all_kept(
            subject, scope, [before], weights, 0, [r.id for r in top] + mine, True
        )
    elif now is not None and _fills(now, limit):
        top, own = now.top(limit), now.lines_of(mine)
        for m in mine:
            own.setdefault(m, Ranked(m, now.rank_of_nothing(), 0, 0, 0, 0, 0))
        last = await period_ladder(subject, scope, before)
        asked = [r.id for r in top] + mine
        earlier = (
            last.lines_of(asked)
            if last is not None
            else await ranks_by_count(subject, scope, before, asked)
        )
        kept = None if last is None else (now, last)
    else:
        top = await top_lines(subject, scope, period.name, limit)
        if len(top) < limit or (top and top[-1].score == 0):
            # Fewer scorers than places: the rest of the scope shares the last rank.
            weights = await load_weights()
            top, own = await rank_all_kept(subject, scope, [period.name], weights, limit, mine)
            earlier = await ranks_by_count(subject, scope, before, [r.id for r in top] + mine)
        else:
            own, earlier = await _ranks_now_and_before(
                subject, scope, period.name, before, top, mine
            )
    for line in [*top, *own.values()]:
        then = earlier.get(line.id)
        line.rank_change = None if then is None else then.rank - line.rank
    return Table(top, [own[m] for m in mine if m in own], kept)


def _fills(ladder: Ladder, limit: int) -> bool:
    """Whether the lines alone make the top ``limit``: as many lines, all above nothing
    (else the scope's advisors or stores without a line share a place among them)."""
    return len(ladder) >= limit and (limit == 0 or ladder.score_at(limit - 1) > 0)


async def _ranks_now_and_before(
    subject: Subject, scope: Scope, now: str, before: str, top: list[Ranked], mine: list[int]
) -> tuple[dict[int, Ranked], dict[int, Ranked]]:
    """``mine``'s lines now, and the top's and ``mine``'s last period: a region's or a
    store's advisors in one statement (one pass over the scope), others by counting."""
    earlier_ids = [r.id for r in top] + mine
    if scope.kind != "national" and subject is ADVISORS:
        asks = {now: mine, before: earlier_ids} if mine else {before: earlier_ids}
        both = await scope_ranks(scope, asks)
        own, earlier = both.get(now, {}), both[before]
    else:
        own = await ranks_by_count(subject, scope, now, mine)
        earlier = await ranks_by_count(subject, scope, before, earlier_ids)
    for m in mine:
        if m not in own:
            rank = await rank_of_nothing(subject, scope, now)
            own[m] = Ranked(m, rank, 0, 0, 0, 0, 0)
    return own, earlier


async def advisor_cards(ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """``members.advisor_cards`` as the tables show them: kept while the registry stands."""
    return await LADDERS.cards("advisor", ids, members.advisor_cards)


async def store_cards(ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    return await LADDERS.cards("store", ids, members.store_cards)


async def completion_of(advisor_id: int, period: Period) -> tuple[int, int]:
    found = await completion_by_advisor(period.first, period.last, [advisor_id])
    return found.get(advisor_id, (0, 0))


async def my_ranks(advisor_id: int, period: Period) -> tuple[Ranked, dict[str, int]]:
    """An advisor's line for the period and their rank in their store, their region
    and the country."""
    card = (await advisor_cards([advisor_id]))[advisor_id]
    scopes = {
        "store": Scope(f"store:{card['store_code']}", "store", store_id=card["store_id"]),
        "region": Scope(f"region:{card['region']}", "region", region=card["region"]),
        "national": Scope("national", "national"),
    }
    ranks: dict[str, int] = {}
    line = Ranked(advisor_id, 0, 0, 0, 0, 0, 0)
    for name, scope in scopes.items():
        kept = await period_ladder(ADVISORS, scope, period.name)
        if kept is not None:
            found = kept.lines_of([advisor_id])
            if advisor_id not in found:
                ranks[name] = kept.rank_of_nothing()
                continue
        else:
            found = await ranks_by_count(ADVISORS, scope, period.name, [advisor_id])
        if advisor_id in found:
            line = found[advisor_id]
            ranks[name] = line.rank
        else:
            ranks[name] = await rank_of_nothing(ADVISORS, scope, period.name)
    return line, ranks


async def ledger_entries(
    advisor_id: int, booked_month: str, original_date: Any, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """The ledger rows behind a statement line: booked in the month for the advisor,
    counted in that month (a regular line) or on the original day (an adjustment)."""
    which = "counts_month = {}" if original_date is None else "counts_on = {}"
    rows = await fetch(
        "SELECT f.id, f.kind, f.amount, f.counts_on, f.booked_month, f.source_key,"
        " s.code AS store_code, f.member, f.purchase, f.task, f.recorded_at FROM score_fact f"
        f" JOIN {members.STORES} s ON s.id = f.store WHERE f.advisor = {{}}"
        " AND f.booked_month = {}"
        f" AND f.{which} AND f.id > {{}} ORDER BY f.id LIMIT {{}}",
        advisor_id,
        booked_month,
        booked_month if original_date is None else original_date,
        after_id,
        limit,
    )
    return rows


def national_ranks(period: str) -> tuple[str, list[Any]]:
    """A relation of every scored advisor's national rank for a period (``advisor``,
    ``r``), by the default weights, for statements that rank the whole chain at once."""
    return (
        "(SELECT advisor, rank() OVER (ORDER BY score DESC) AS r"
        " FROM advisor_score WHERE period = {})",
        [period],
    )


async def store_days(store_id: int, first: str, last: str) -> dict[str, dict[str, int]]:
    """A store's daily totals (``points``, ``new_members``) from day ``first`` to
    ``last`` (ISO dates), by day; days without a line are absent."""
    rows = await fetch(
        "SELECT period, points, new_members FROM store_score WHERE store = {}"
        " AND period >= {} AND period <= {} AND LENGTH(period) = 10",
        store_id,
        first,
        last,
    )
    return {
        r["period"]: {"points": int(r["points"]), "new_members": int(r["new_members"])}
        for r in rows
    }
