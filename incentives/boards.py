"""League tables, contest standings, an advisor's score and bonus statements, put
together as the API shows them (names masked for whoever may not see them)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, cast

import msgspec

from audit import queries as trail_queries
from core import clock
from core.errors import NotFound
from core.money import fen_to_yuan
from core.periods import Period, month_of
from incentives import contests, statements
from incentives.queries import (
    Viewer,
    advisor_cards,
    completion_of,
    league_table,
    ledger_entries,
    my_ranks,
    shown_name,
    store_cards,
    viewer_of,
)
from incentives.ranking import ADVISORS, STORES, Ranked
from incentives.rules import Rates, rates_for, score_text
from incentives.schemas import (
    AdvisorEntry,
    AdvisorTable,
    BonusRatesOut,
    BonusStatementOut,
    LedgerEntryOut,
    LedgerPage,
    LedgerRef,
    MyRanks,
    MyScore,
    PayChange,
    PkMatch,
    PkRecord,
    PkSide,
    Standings,
    StatementFigures,
    StatementLineOut,
    StoreEntry,
    StoreTable,
)
from incentives.targets import my_target
from members import queries as members
from members.accounts import Principal
from members.scopes import Scope, check_may_see, parse_scope
from tasks.queries import completion


async def _advisor_entries(viewer: Viewer, lines: list[Ranked]) -> list[AdvisorEntry]:
    cards = await advisor_cards([line.id for line in lines])
    entries = []
    for line in lines:
        card = cards[line.id]
        entries.append(
            AdvisorEntry(
                rank=line.rank,
                score=score_text(line.score),
                new_members=line.new_members,
                points=line.points,
                tasks_done=line.tasks_done,
                tasks_converted=line.tasks_converted,
                rank_change=line.rank_change,
                advisor_id=line.id,
                advisor_code=card["code"],
                advisor_name=shown_name(viewer, card["name"], card["region"], card["store_code"]),
                store_code=card["store_code"],
            )
        )
    return entries


async def _store_entries(lines: list[Ranked]) -> list[StoreEntry]:
    cards = await store_cards([line.id for line in lines])
    return [
        StoreEntry(
            **_ranking(line),
            store_id=line.id,
            store_code=cards[line.id]["store_code"],
            store_name=cards[line.id]["store_name"],
            region=cards[line.id]["region"],
            active_advisors=line.active_advisors,
        )
        for line in lines
    ]


def _ranking(line: Ranked) -> dict[str, Any]:
    return {
        "rank": line.rank,
        "score": score_text(line.score),
        "new_members": line.new_members,
        "points": line.points,
        "tasks_done": line.tasks_done,
        "tasks_converted": line.tasks_converted,
        "rank_change": line.rank_change,
    }


def _heading(scope: Scope, period: Period) -> dict[str, Any]:
    return {
        "scope": scope.text,
        "period": period.name,
        "first_day": period.first,
        "last_day": period.last,
    }


async def advisor_table(
    principal: Principal, scope_text: str | None, period: Period, limit: int
) -> AdvisorTable:
    viewer = await viewer_of(principal)
    scope = await _scope_seen_by(principal, scope_text)
    mine = [viewer.advisor_id] if viewer.advisor_id is not None else []
    table = await league_table(ADVISORS, scope, period, limit, mine)
    if table.kept is None:
        both = await _advisor_entries(viewer, [*table.entries, *table.mine])
        entries, me = both[: len(table.entries)], both[len(table.entries) :]
    else:
        entries = await _kept_entries(table.kept, viewer, table.entries)
        me = await _advisor_entries(viewer, table.mine)
    return AdvisorTable(
        **_heading(scope, period),
        entries=entries,
        me=me[0] if me else None,
    )


async def _kept_entries(
    kept: tuple[Any, Any], viewer: Viewer, lines: list[Ranked]
) -> list[AdvisorEntry]:
    """A kept table's top entries as the viewer's regions see the names, built once per
    pair of ladders and kept with this period's (last period's held beside them, so
    its id is not reused while the entry stands)."""
    now, last = kept
    key = ("advisor entries", id(last), len(lines), viewer.regions)
    hit = now.memo.get(key)
    if hit is not None:
        return cast(list[AdvisorEntry], hit[1])
    entries = await _advisor_entries(viewer, lines)
    if len(now.memo) >= 64:
        now.memo.clear()
    now.memo[key] = (last, entries)
    return entries


async def store_table(
    principal: Principal, scope_text: str | None, period: Period, limit: int, per_advisor: bool
) -> StoreTable:
    viewer = await viewer_of(principal)
    scope = await _scope_seen_by(principal, scope_text)
    table = await league_table(
        STORES, scope, period, limit, sorted(viewer.store_ids), per_advisor=per_advisor
    )
    both = await _store_entries([*table.entries, *table.mine])
    entries, mine = both[: len(table.entries)], both[len(table.entries) :]
    return StoreTable(
        **_heading(scope, period),
        per_advisor=per_advisor,
        entries=entries,
        me=mine[0] if mine else None,
        mine=mine,
    )


async def _scope_seen_by(principal: Principal, scope_text: str | None) -> Scope:
    """Advisors and owners see every league table (names masked outside their region),
    the chain's by default; a regional login sees its region's only, by default."""
    if scope_text is None:
        scope_text = f"region:{principal.region}" if principal.role == "region" else "national"
    scope = await parse_scope(scope_text)
    if principal.role == "region":
        check_may_see(principal, scope)
    return scope


async def standings(principal: Principal, contest_id: int, limit: int) -> Standings:
    contest = await contests.load_contest(contest_id)
    await _scope_seen_by(principal, contest.head.scope)
    viewer = await viewer_of(principal)
    final = contests.is_final(contest)
    common = Standings(**msgspec.structs.asdict(contest.head), final=final)
    if contest.head.kind == "pk":
        return await _pk_standings(contest, final, common)
    if contest.head.subject == "advisor":
        mine = [viewer.advisor_id] if viewer.advisor_id is not None else []
        top, own = await contests.league_standings(contest, ADVISORS, limit, mine)
        me = await _advisor_entries(viewer, [own[m] for m in mine if m in own])
        return msgspec.structs.replace(
            common, advisors=await _advisor_entries(viewer, top), me=me[0] if me else None
        )
    mine = sorted(viewer.store_ids)
    top, own = await contests.league_standings(contest, STORES, limit, mine)
    my_stores = await _store_entries([own[m] for m in mine if m in own])
    return msgspec.structs.replace(
        common, stores=await _store_entries(top), my_store=my_stores[0] if my_stores else None
    )


async def _pk_standings(contest: contests.Contest, final: bool, common: Standings) -> Standings:
    scores = await contests.pk_scores(contest)
    cards = await store_cards(list(scores))
    record: dict[int, list[int]] = {s: [0, 0, 0] for s in scores}

    def side(store_id: int) -> PkSide:
        line = scores[store_id]
        return PkSide(
            store_code=cards[store_id]["store_code"],
            store_name=cards[store_id]["store_name"],
            score=score_text(line.score),
            new_members=line.new_members,
            points=line.points,
        )

    matches = []
    for a, b in contest.pairs:
        sa, sb = scores[a].score, scores[b].score
        leader = None if sa == sb else (a if sa > sb else b)
        if leader is None:
            record[a][2] += 1
            record[b][2] += 1
        else:
            loser = b if leader == a else a
            record[leader][0] += 1
            record[loser][1] += 1
        matches.append(
            PkMatch(
                store_a=side(a),
                store_b=side(b),
                leader=None if leader is None else cards[leader]["store_code"],
                decided=final,
            )
        )
    ordered = sorted(record, key=lambda s: (-record[s][0], record[s][1], -scores[s].score, s))
    table: list[PkRecord] = []
    for position, store_id in enumerate(ordered):
        wins, losses, draws = record[store_id]
        previous = ordered[position - 1] if position else None
        rank = (
            table[-1].rank
            if previous is not None
            and record[previous][:2] == record[store_id][:2]
            and scores[previous].score == scores[store_id].score
            else position + 1
        )
        table.append(
            PkRecord(
                rank=rank,
                store_code=cards[store_id]["store_code"],
                store_name=cards[store_id]["store_name"],
                wins=wins,
                losses=losses,
                draws=draws,
                score=score_text(scores[store_id].score),
            )
        )
    return msgspec.structs.replace(common, pairs=matches, table=table)


# --- an advisor's own figures -----------------------------------------------


async def my_score(advisor_id: int, period: Period) -> MyScore:
    line, ranks = await my_ranks(advisor_id, period)
    done, expired = await completion_of(advisor_id, period)
    bonus_month = month_of(period.first).name
    statement = await statements.statement(bonus_month, advisor_id)
    target, attainment = await my_target(advisor_id, bonus_month)
    return MyScore(
        period=period.name,
        first_day=period.first,
        last_day=period.last,
        new_members=line.new_members,
        points=line.points,
        tasks_done=line.tasks_done,
        tasks_converted=line.tasks_converted,
        completion_rate=completion(done, expired),
        score=score_text(line.score),
        bonus_month=bonus_month,
        bonus_estimate=fen_to_yuan(statement.total_fen),
        bonus_final=statement.closed_at is not None,
        rank=MyRanks(**ranks),
        target=target,
        attainment=attainment,
    )


# --- bonus statements --------------------------------------------------------


def rates_out(rates: Rates) -> BonusRatesOut:
    gate = rates.completion_gate_bp
    return BonusRatesOut(
        effective_from=rates.effective_from,
        per_new_member=fen_to_yuan(rates.per_new_member_fen),
        per_1000_points=fen_to_yuan(rates.per_1000_points_fen),
        completion_gate=None
        if gate is None
        else (Decimal(gate) / 10_000).quantize(Decimal("0.0001")),
    )


async def pay_changes(month: str) -> list[PayChange]:
    """The trail's changes to the rates this month is paid at (the row in force for it),
    so a statement says when and by whom its rates were last set."""
    in_force = (await rates_for(month)).effective_from
    found = await trail_queries.entries("bonus_rates", keys=[in_force])
    hq_zone = clock.zone(clock.DEFAULT_TIMEZONE)
    return [
        PayChange(
            at=e.at,
            who=e.who,
            entity=e.entity,
            key=e.key,
            note=f"rates changed on {e.at.astimezone(hq_zone):%Y-%m-%d %H:%M} by {e.who}",
        )
        for e in found.entries
    ]


def statement_out(
    statement: statements.Statement, changes: list[PayChange] | None = None
) -> BonusStatementOut:
    lines = []
    for line in statement.lines:
        which = "" if line.original_date is None else f"&original_date={line.original_date}"
        lines.append(
            StatementLineOut(
                **{name: getattr(line, name) for name in StatementFigures.__struct_fields__},
                new_member_bonus=fen_to_yuan(line.new_member_fen),
                points_bonus=fen_to_yuan(line.points_fen),
                amount=fen_to_yuan(line.amount_fen),
                ledger=LedgerRef(
                    entries=line.entries,
                    first_entry=line.first_entry,
                    last_entry=line.last_entry,
                    href=f"/hq/v1/score-ledger?advisor={line.advisor_code}"
                    f"&booked_month={statement.month}{which}",
                ),
            )
        )
    return BonusStatementOut(
        period=statement.month,
        status="open" if statement.closed_at is None else "closed",
        closed_at=statement.closed_at,
        rates=rates_out(statement.rates),
        total=fen_to_yuan(statement.total_fen),
        lines=lines,
        changes=changes or [],
    )


async def ledger_page(
    advisor_code: str, month: str, original_date: date | None, after: int, limit: int
) -> LedgerPage:
    advisor_id = await members.advisor_id_by_code(advisor_code)
    if advisor_id is None:
        raise NotFound(f"no advisor {advisor_code}")
    rows = await ledger_entries(advisor_id, month, original_date, after, limit)
    entries = [
        LedgerEntryOut(
            entry_id=r["id"],
            kind=r["kind"],
            amount=r["amount"],
            counts_on=clock.as_date(r["counts_on"]),
            booked_month=r["booked_month"],
            source=r["source_key"],
            store_code=r["store_code"],
            member_id=r["member"],
            purchase_id=r["purchase"],
            task_id=r["task"],
            recorded_at=r["recorded_at"],
        )
        for r in rows
    ]
    return LedgerPage(
        advisor_code=advisor_code,
        booked_month=month,
        original_date=original_date,
        entries=entries,
        next_after=entries[-1].entry_id if len(entries) == limit else None,
    )


async def store_head_to_heads(store_id: int, day: date) -> list[dict[str, Any]]:
    """The store's running PK contests: each pairing's score so far against the other
    store, and who leads (1 the store, -1 the other, 0 level)."""
    found = []
    for contest in await contests.running_pk_of(store_id, day):
        scores = await contests.pk_scores(contest)
        cards = await store_cards(list(scores))
        for a, b in contest.pairs:
            if store_id not in (a, b):
                continue
            other = b if a == store_id else a
            mine, theirs = scores[store_id].score, scores[other].score
            found.append(
                {
                    "name": contest.head.name,
                    "ends_on": contest.head.ends_on,
                    "mine": score_text(mine),
                    "theirs": score_text(theirs),
                    "lead": (mine > theirs) - (mine < theirs),
                    "other": cards[other],
                }
            )
    return found
