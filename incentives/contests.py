"""Contests HQ runs over a window: a league (促销员先锋赛, 门店销售竞赛) ranked with the
contest's own weights, or a PK (千店牵手PK赛) of store pairs.

A contest's window is read off the period totals, in whole months, ISO weeks and
days that make it up, so a month-long national contest sums a handful of
rows per advisor rather than thirty.

PK: each pair's leader is the store with the higher score over the window so far
(level scores lead nobody); once the window is over the leader is the winner. The
wins/losses table counts each store's pairs — HQ may pair a store more than once.
Automatic pairing sorts the scope's stores by size (members who joined there) and
pairs neighbours; with an odd count the smallest store sits out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec

from audit import trail
from core import clock
from core.db import fetch, in_write_transaction, rows_source
from core.errors import InvalidInput, NotFound
from core.periods import FIRST_YEAR, LAST_YEAR, cover
from incentives.ladders import rank_all_kept
from incentives.ranking import STORES, Ranked, Subject
from incentives.rules import Weights, load_weights
from incentives.schemas import ContestHead, ContestIn, ContestOut, PairOut
from members import queries as members
from members.scopes import Scope, parse_scope

MAX_WINDOW_DAYS = 366


@dataclass(frozen=True, slots=True)
class Contest:
    head: ContestHead
    weights: Weights
    pairs: list[tuple[int, int]]  # store ids


async def create_contest(data: ContestIn) -> ContestOut:
    """A contest as HQ asked for it: its pairs by store code and the stores left out."""
    contest, unpaired = await _create(data)
    codes = await _codes([s for pair in contest.pairs for s in pair])
    pk = contest.head.kind == "pk"
    return ContestOut(
        **msgspec.structs.asdict(contest.head),
        pairs=[PairOut(codes[a], codes[b]) for a, b in contest.pairs] if pk else None,
        unpaired=unpaired if pk else None,
    )


async def _create(data: ContestIn) -> tuple[Contest, list[str]]:
    name, kind, subject, scope_text = data.name, data.kind, data.subject, data.scope
    starts_on, ends_on, pairs = data.starts_on, data.ends_on, data.pairs
    scope = await parse_scope(scope_text)
    if starts_on.year < FIRST_YEAR or ends_on.year > LAST_YEAR:
        raise InvalidInput.on("starts_on", f"within the years {FIRST_YEAR} to {LAST_YEAR}")
    if ends_on < starts_on:
        raise InvalidInput.on("ends_on", "is before starts_on")
    if (ends_on - starts_on).days + 1 > MAX_WINDOW_DAYS:
        raise InvalidInput.on("ends_on", f"a contest runs at most {MAX_WINDOW_DAYS} days")
    chosen = Weights.sent(data.weights, await load_weights())
    unpaired: list[str] = []
    pair_ids: list[tuple[int, int]] = []
    if kind == "pk":
        if subject != "store":
            raise InvalidInput.on("subject", "a PK contest is between stores")
        if pairs is None:
            raise InvalidInput.on("pairs", 'give pairs of store codes, or "auto"')
        if pairs == "auto":
            pair_ids, unpaired = await _auto_pairs(scope)
        else:
            assert isinstance(pairs, list)
            pair_ids = await _given_pairs(pairs)
        if not pair_ids:
            raise InvalidInput.on("pairs", "makes no pair: the scope has fewer than two stores")
    elif pairs is not None:
        raise InvalidInput.on("pairs", "only a PK contest has pairs")

    async def work() -> int:
        made = await fetch(
            "INSERT INTO contest (name, kind, subject, scope, starts_on, ends_on, new_member,"
            " points, task_done, task_converted, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
            name,
            kind,
            subject,
            scope.text,
            starts_on,
            ends_on,
            chosen.new_member,
            chosen.points,
            chosen.task_done,
            chosen.task_converted,
            clock.now(),
        )
        contest_id = int(made[0]["id"])
        if pair_ids:
            source, args = rows_source(
                [("position", "int"), ("a", "int"), ("b", "int")],
                [(i, a, b) for i, (a, b) in enumerate(pair_ids, start=1)],
            )
            await fetch(
                "INSERT INTO contest_pair (contest, position, store_a, store_b)"
                f" SELECT {{}}, position, a, b FROM ({source}) AS src",
                contest_id,
                *args,
            )
        await trail.record(
            "contest",
            str(contest_id),
            "create",
            None,
            {
                "name": name,
                "kind": kind,
                "subject": subject,
                "scope": scope.text,
                "starts_on": starts_on,
                "ends_on": ends_on,
                "weights": chosen.shown(),
                "pairs": len(pair_ids),
            },
        )
        return contest_id

    contest_id = await in_write_transaction(work)
    head = ContestHead(
        contest_id, name, kind, subject, scope.text, starts_on, ends_on, chosen.shown()
    )
    return Contest(head, chosen, pair_ids), unpaired


async def _codes(store_ids: list[int]) -> dict[int, str]:
    cards = await members.store_cards(store_ids)
    return {store_id: card["store_code"] for store_id, card in cards.items()}


async def _given_pairs(pairs: list[list[str]]) -> list[tuple[int, int]]:
    found = await members.store_ids_by_code([code for pair in pairs for code in pair])
    result = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise InvalidInput.on(f"pairs[{i}]", "a pair is two store codes")
        if pair[0] == pair[1]:
            raise InvalidInput.on(f"pairs[{i}]", "pairs a store with itself")
        for code in pair:
            if code not in found:
                raise InvalidInput.on(f"pairs[{i}]", f"no store {code}")
        result.append((found[pair[0]], found[pair[1]]))
    return result


async def _auto_pairs(scope: Scope) -> tuple[list[tuple[int, int]], list[str]]:
    """Neighbours by membership paired; the smallest sits out when the count is odd."""
    stores = await members.stores_by_members(scope.region, scope.store_id)
    pairs = [(stores[i][0], stores[i + 1][0]) for i in range(0, len(stores) - 1, 2)]
    unpaired = [stores[-1][1]] if len(stores) % 2 else []
    return pairs, unpaired


async def load_contest(contest_id: int) -> Contest:
    rows = await fetch(
        "SELECT id, name, kind, subject, scope, starts_on, ends_on, new_member, points,"
        " task_done, task_converted FROM contest WHERE id = {}",
        contest_id,
    )
    if not rows:
        raise NotFound(f"no contest {contest_id}")
    row = rows[0]
    pairs = await fetch(
        "SELECT store_a, store_b FROM contest_pair WHERE contest = {} ORDER BY position",
        contest_id,
    )
    weights = Weights(
        int(row["new_member"]),
        int(row["points"]),
        int(row["task_done"]),
        int(row["task_converted"]),
    )
    head = ContestHead(
        int(row["id"]),
        row["name"],
        row["kind"],
        row["subject"],
        row["scope"],
        clock.as_date(row["starts_on"]),
        clock.as_date(row["ends_on"]),
        weights.shown(),
    )
    return Contest(
        head=head,
        weights=weights,
        pairs=[(int(p["store_a"]), int(p["store_b"])) for p in pairs],
    )


def is_final(contest: Contest) -> bool:
    return clock.today(clock.zone(clock.DEFAULT_TIMEZONE)) > contest.head.ends_on


async def league_standings(
    contest: Contest, subject: Subject, limit: int, mine: list[int]
) -> tuple[list[Ranked], dict[int, Ranked]]:
    scope = await parse_scope(contest.head.scope)
    periods = cover(contest.head.starts_on, contest.head.ends_on)
    return await rank_all_kept(subject, scope, periods, contest.weights, limit, mine)


async def pk_scores(contest: Contest) -> dict[int, Ranked]:
    """Each paired store's totals and score over the window."""
    stores = sorted({s for pair in contest.pairs for s in pair})
    periods = cover(contest.head.starts_on, contest.head.ends_on)
    # The ranks are national and unused here: only the stores' own lines are.
    _, scores = await rank_all_kept(
        STORES, Scope("national", "national"), periods, contest.weights, 0, stores
    )
    return scores


async def recent_contests(limit: int = 50) -> list[dict[str, Any]]:
    return await fetch(
        "SELECT id, name, kind, subject, scope, starts_on, ends_on FROM contest"
        " ORDER BY id DESC LIMIT {}",
        limit,
    )


async def running_pk_of(store_id: int, day: date) -> list[Contest]:
    """The PK contests running on ``day`` that pair the store."""
    rows = await fetch(
        "SELECT DISTINCT c.id FROM contest c JOIN contest_pair p ON p.contest = c.id"
        " WHERE c.kind = 'pk' AND c.starts_on <= {} AND c.ends_on >= {}"
        " AND (p.store_a = {} OR p.store_b = {}) ORDER BY c.id",
        day,
        day,
        store_id,
        store_id,
    )
    return [await load_contest(int(row["id"])) for row in rows]
