"""Ranking for the league tables, in SQL: standard competition ranking (1, 2, 2, 4) by
score; inside a tie, entries are listed in the order advisors (or stores) were
registered with HQ, i.e. by id.

- the plain table of one period by the default weights reads the top N straight
  off the ``(period, score DESC)`` index, ranks them with a window function (every
  line that scored more than one of them is among them, so their ranks are the
  table's), and finds ``me`` and last period's ranks as "how many scored more"; a
  region's or a store's advisors are ranked off that index with the scope as a
  hashed set, this period and last in one statement;
- a table that must consider everyone (a per-advisor store table, a contest with
  its own weights over a window) reads the top N of the lines that scored by a
  top-N sort and counts who scored more than the caller; only when someone without
  a line would be in the top (fewer scorers than places) does it rank the whole
  scope with window functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.db import fetch, in_list, is_postgres
from incentives.rules import KINDS, Weights
from members import queries as members
from members.scopes import Scope


@dataclass(frozen=True, slots=True)
class Subject:
    name: str  # advisor | store
    table: str
    key: str


ADVISORS = Subject("advisor", "advisor_score", "advisor")
STORES = Subject("store", "store_score", "store")


def scope_sql(subject: Subject, scope: Scope, alias: str) -> tuple[str, str, list[Any]]:
    """(joins, conditions, their arguments) restricting ``alias``'s rows to the scope;
    an advisor is in the scope of the store they work at now."""
    if scope.kind == "national":
        return "", "", []
    if subject is ADVISORS:
        join = f" JOIN {members.ADVISORS} {alias}_a ON {alias}_a.id = {alias}.advisor"
        if scope.kind == "store":
            return join, f" AND {alias}_a.store = {{}}", [scope.store_id]
        return join, f" AND {alias}_a.region = {{}}", [scope.region]
    if scope.kind == "store":
        return "", f" AND {alias}.store = {{}}", [scope.store_id]
    return (
        f" JOIN {members.STORES} {alias}_s ON {alias}_s.id = {alias}.store",
        f" AND {alias}_s.region = {{}}",
        [scope.region],
    )


@dataclass(slots=True)
class Ranked:
    id: int
    rank: int
    new_members: int
    points: int
    tasks_done: int
    tasks_converted: int
    score: int  # hundredths
    active_advisors: int | None = None
    rank_change: int | None = None


def ranked_line(row: dict[str, Any]) -> Ranked:
    return Ranked(
        id=int(row["id"]),
        rank=int(row["rank"]),
        new_members=int(row["new_members"]),
        points=int(row["points"]),
        tasks_done=int(row["tasks_done"]),
        tasks_converted=int(row["tasks_converted"]),
        score=int(row["score"]),
        active_advisors=None if row.get("active_advisors") is None else int(row["active_advisors"]),
    )


# --- the fast path: one period, default weights ------------------------------


async def top_lines(subject: Subject, scope: Scope, period: str, limit: int) -> list[Ranked]:
    join, where, args = scope_sql(subject, scope, "s")
    rows = await fetch(
        "SELECT x.*, rank() OVER (ORDER BY x.score DESC) AS rank FROM ("
        f"SELECT s.{subject.key} AS id, s.new_members, s.points, s.tasks_done,"
        f" s.tasks_converted, s.score FROM {subject.table} s{join}"
        f" WHERE s.period = {{}}{where} ORDER BY s.score DESC, s.{subject.key} LIMIT {{}}"
        ") x ORDER BY x.score DESC, x.id",
        period,
        *args,
        limit,
    )
    return [ranked_line(row) for row in rows]


async def ranks_by_count(
    subject: Subject, scope: Scope, period: str, ids: list[int]
) -> dict[int, Ranked]:
    """Each subject's line of ``period`` and its rank: one more than the lines of the
    scope that scored more, an index range each. Advisors of a region or a store are
    ranked whole with a window function instead: counting would join every line that
    scored more to its advisor and store, once for every advisor asked about."""
    if not ids:
        return {}
    cond, id_args = in_list(ids, "int")
    if scope.kind != "national" and subject is ADVISORS:
        return (await scope_ranks(scope, {period: ids})).get(period, {})
    join, where, args = scope_sql(subject, scope, "q")
    rows = await fetch(
        f"SELECT s.{subject.key} AS id, s.new_members, s.points, s.tasks_done,"
        f" s.tasks_converted, s.score, 1 + (SELECT COUNT(*) FROM {subject.table} q{join}"
        f" WHERE q.period = {{}} AND q.score > s.score{where}) AS rank"
        f" FROM {subject.table} s WHERE s.period = {{}} AND s.{subject.key} {cond}",
        period,
        *args,
        period,
        *id_args,
    )
    return {int(row["id"]): ranked_line(row) for row in rows}


async def scope_ranks(scope: Scope, asks: dict[str, list[int]]) -> dict[str, dict[int, Ranked]]:
    """For each period asked about, the lines and ranks of the advisors asked about,
    ranked among the advisors of the region or store: in one statement, off the
    (period, score, advisor) index alone with the scope's advisors as a hashed set
    (a join per line to the advisor and their store cost more)."""
    member_args: list[Any] = [scope.store_id if scope.kind == "store" else scope.region]
    member = "a.store = {}" if scope.kind == "store" else "a.region = {}"
    period_cond, period_args = in_list(sorted(asks), "text")
    wanted, wanted_args = [], []
    for period, ids in sorted(asks.items()):
        cond, id_args = in_list(ids or [0], "int")
        wanted.append(f"(r.period = {{}} AND r.advisor {cond})")
        wanted_args += [period, *id_args]
    rows = await fetch(
        "SELECT r.period, s.advisor AS id, s.new_members, s.points, s.tasks_done,"
        " s.tasks_converted, s.score, r.rank FROM (SELECT q.period, q.advisor,"
        " rank() OVER (PARTITION BY q.period ORDER BY q.score DESC) AS rank"
        f" FROM advisor_score q WHERE q.period {period_cond} AND q.advisor IN"
        f" (SELECT a.id FROM {members.ADVISORS} a WHERE {member})) r JOIN advisor_score s"
        f" ON s.period = r.period AND s.advisor = r.advisor WHERE {' OR '.join(wanted)}",
        *period_args,
        *member_args,
        *wanted_args,
    )
    found: dict[str, dict[int, Ranked]] = {period: {} for period in asks}
    for row in rows:
        found[row["period"]][int(row["id"])] = ranked_line(row)
    return found


async def rank_of_nothing(subject: Subject, scope: Scope, period: str) -> int:
    """The rank of a subject in scope with no line yet: below everyone who scored."""
    join, where, args = scope_sql(subject, scope, "s")
    rows = await fetch(
        f"SELECT COUNT(*) AS n FROM {subject.table} s{join} WHERE s.period = {{}}"
        f" AND s.score > 0{where}",
        period,
        *args,
    )
    return 1 + int(rows[0]["n"])


# --- the full path: everyone in scope, any weights, any set of periods -------


async def rank_all(
    subject: Subject,
    scope: Scope,
    periods: list[str],
    weights: Weights,
    limit: int,
    also: list[int],
    per_advisor: bool = False,
) -> tuple[list[Ranked], dict[int, Ranked]]:
    """The top ``limit`` of everyone in scope (active advisors, or every store, plus
    whoever scored), summing the totals of ``periods``; and the lines of ``also``."""
    fast = await _rank_scorers(subject, scope, periods, weights, limit, also, per_advisor)
    if fast is not None:
        return fast
    also_cond, also_args = in_list(also or [0], "int")
    rows = await _ranked_universe(
        subject,
        scope,
        periods,
        weights,
        per_advisor,
        f" WHERE pos <= {{}} OR id {also_cond}",
        [limit, *also_args],
    )
    wanted = set(also)
    top = [ranked_line(row) for row in rows if int(row["pos"]) <= limit]
    return top, {int(row["id"]): ranked_line(row) for row in rows if int(row["id"]) in wanted}


async def rank_everyone(
    subject: Subject, scope: Scope, periods: list[str], weights: Weights, per_advisor: bool
) -> dict[str, list[Any]]:
    """Everyone ``rank_all`` ranks, in table order with their ranks, column by column
    (``LADDER_COLUMNS``)."""
    return await _columns(
        _universe_query(subject, scope, periods, weights, per_advisor), per_advisor
    )


async def scope_lines(subject: Subject, scope: Scope, period: str) -> dict[str, list[Any]]:
    """Every line of the scope for one period by the default weights, in table order
    (score down, then id), column by column; ranks 0, for the caller to set."""
    join, where, args = scope_sql(subject, scope, "s")
    return await _columns(
        (
            f"SELECT s.{subject.key} AS id, 0 AS rank, s.new_members, s.points,"
            f" s.tasks_done, s.tasks_converted, s.score FROM {subject.table} s{join}"
            f" WHERE s.period = {{}}{where} ORDER BY s.score DESC, s.{subject.key}",
            [period, *args],
        ),
        False,
    )


LADDER_COLUMNS = (
    "id",
    "rank",
    "new_members",
    "points",
    "tasks_done",
    "tasks_converted",
    "score",
    "active_advisors",
)


async def _columns(query: tuple[str, list[Any]], staffed: bool) -> dict[str, list[Any]]:
    """A ranking's rows as columns. PostgreSQL hands them over as one row of arrays
    (a ladder of 50,000 lines as 50,000 rows cost ten times as much to read)."""
    sql, args = query
    names = LADDER_COLUMNS if staffed else LADDER_COLUMNS[:-1]
    if is_postgres():
        arrays = ", ".join(f"array_agg(x.{name}) AS {name}" for name in names)
        rows = await fetch(f"SELECT {arrays} FROM ({sql}) x", *args)
        found = {name: list(rows[0][name] or []) for name in names}
    else:
        rows = await fetch(sql, *args)
        found = {name: [row[name] for row in rows] for name in names}
    if not staffed:
        found["active_advisors"] = [None] * len(found["id"])
    return found


async def _ranked_universe(
    subject: Subject,
    scope: Scope,
    periods: list[str],
    weights: Weights,
    per_advisor: bool,
    which: str,
    which_args: list[Any],
) -> list[dict[str, Any]]:
    """Everyone in scope ranked with window functions, the rows ``which`` keeps."""
    sql, args = _universe_query(subject, scope, periods, weights, per_advisor, which)
    return await fetch(sql, *args, *which_args)


def _universe_query(
    subject: Subject,
    scope: Scope,
    periods: list[str],
    weights: Weights,
    per_advisor: bool,
    which: str = "",
) -> tuple[str, list[Any]]:
    join, where, scope_args = scope_sql(subject, scope, "s")
    period_cond, period_args = in_list(periods, "text")
    universe, universe_args = _universe_sql(subject, scope)
    staff, staff_column, score = _valuation(per_advisor, "u.id")
    counts = ", ".join(f"COALESCE(t.{column}, 0) AS {column}" for column in _COLUMNS)
    return (
        f"WITH {_totals_sql(subject, join, period_cond, where, len(periods), per_advisor)},"
        f" universe AS ({universe}),"
        f" valued AS (SELECT u.id, {counts}, {score} AS score{staff_column}"
        f" FROM universe u LEFT JOIN totals t ON t.id = u.id{staff}),"
        " ranked AS (SELECT v.*, rank() OVER (ORDER BY v.score DESC) AS rank,"
        " row_number() OVER (ORDER BY v.score DESC, v.id) AS pos FROM valued v)"
        f" SELECT * FROM ranked{which} ORDER BY pos",
        [*period_args, *scope_args, *universe_args, *[weights.of(kind) for kind in KINDS]],
    )


def _totals_sql(
    subject: Subject, join: str, period_cond: str, where: str, periods: int, staffed: bool
) -> str:
    """The ``totals`` of each subject over the periods (and, for a per-advisor table,
    the ``staff`` of each store, read once however often it is joined)."""
    # Whole numbers on both engines: PostgreSQL sums a bigint into a numeric, and the
    # per-advisor division must stay integer division to tie where the table shows a tie.
    if periods == 1:  # one line a subject already: no sums to make
        sums = ", ".join(f"CAST(s.{column} AS BIGINT) AS {column}" for column in _COLUMNS)
        group = ""
    else:
        sums = ", ".join(f"CAST(SUM(s.{column}) AS BIGINT) AS {column}" for column in _COLUMNS)
        group = f" GROUP BY s.{subject.key}"
    staff = f", staff AS {members.STAFF}" if staffed else ""
    return (
        f"totals AS (SELECT s.{subject.key} AS id, {sums} FROM {subject.table} s{join}"
        f" WHERE s.period {period_cond}{where}{group}){staff}"
    )


def _valuation(per_advisor: bool, store_id: str) -> tuple[str, str, str]:
    """(staff join, its column, the score expression) over the totals ``t`` (weights
    as parameters, in ``KINDS`` order) of the subject whose id is ``store_id``."""
    value = " + ".join(f"COALESCE(t.{column}, 0) * {{}}" for column in _COLUMNS)
    if not per_advisor:
        return "", "", f"({value})"
    # Score per active advisor, in hundredths rounded half-up (integer arithmetic, so
    # both engines tie exactly where the table shows a tie).
    most = "GREATEST" if is_postgres() else "MAX"
    n = f"{most}(COALESCE(c.n, 0), 1)"
    staff = f" LEFT JOIN staff c ON c.store = {store_id}"
    return staff, ", COALESCE(c.n, 0) AS active_advisors", f"(({value}) * 2 + {n}) / (2 * {n})"


# Up to this many lines asked for are ranked by counting who scored more, each a pass
# over the scope's lines; more (last period's ranks of a whole top) by one sort.
_COUNTED = 4


async def _rank_scorers(
    subject: Subject,
    scope: Scope,
    periods: list[str],
    weights: Weights,
    limit: int,
    also: list[int],
    per_advisor: bool,
) -> tuple[list[Ranked], dict[int, Ranked]] | None:
    """``rank_all`` from the scope's score lines alone, when that is exact: the top
    ``limit`` lines all scored above zero (so nobody without a line is among them),
    read by a top-N sort instead of ranking everyone; the lines of ``also`` ranked
    as one more than the lines that scored more. None when the full ranking is needed
    (fewer scorers than places, or a line asked for scored below zero)."""
    join, where, scope_args = scope_sql(subject, scope, "s")
    period_cond, period_args = in_list(periods, "text")
    universe, universe_args = _universe_sql(subject, scope)
    staff, staff_column, score = _valuation(per_advisor, "t.id")
    asked_staff, _, asked_score = _valuation(per_advisor, "u.id")
    columns = ", ".join(f"t.{column}" for column in _COLUMNS)
    counts = ", ".join(f"COALESCE(t.{column}, 0) AS {column}" for column in _COLUMNS)
    also_cond, also_args = in_list(also or [0], "int")
    weight_args = [weights.of(kind) for kind in KINDS]
    if len(also) <= _COUNTED:
        rank_of_asked = "1 + (SELECT COUNT(*) FROM valued w WHERE w.score > a.score)"
        ranked = ""
    else:
        rank_of_asked = "COALESCE(r.rank, 1 + (SELECT COUNT(*) FROM valued w WHERE w.score > 0))"
        ranked = (
            " LEFT JOIN (SELECT id, rank() OVER (ORDER BY score DESC) AS rank FROM valued)"
            " r ON r.id = a.id"
        )
    nothing = ", NULL AS active_advisors" if not per_advisor else ""
    rows = await fetch(
        f"WITH {_totals_sql(subject, join, period_cond, where, len(periods), per_advisor)},"
        f" valued AS (SELECT t.id, {columns}, {score} AS score{staff_column}{nothing}"
        f" FROM totals t{staff}),"
        f" top AS (SELECT * FROM valued ORDER BY score DESC, id LIMIT {{}}),"
        f" asked AS (SELECT u.id, {counts}, {asked_score} AS score"
        f"{staff_column or ', NULL AS active_advisors'}"
        f" FROM ({universe}) u LEFT JOIN totals t ON t.id = u.id{asked_staff}"
        f" WHERE u.id {also_cond})"
        " SELECT 0 AS part, v.*, 0 AS rank FROM top v"
        f" UNION ALL SELECT 1 AS part, a.*, {rank_of_asked} AS rank FROM asked a{ranked}",
        *period_args,
        *scope_args,
        *weight_args,
        limit,
        *weight_args,  # the asked lines' score comes before their universe
        *universe_args,
        *also_args,
    )
    top_rows = [row for row in rows if int(row["part"]) == 0]
    if len(top_rows) < limit or (top_rows and int(top_rows[-1]["score"]) <= 0):
        return None
    asked = [row for row in rows if int(row["part"]) == 1]
    if any(int(row["score"]) < 0 for row in asked):
        return None
    top: list[Ranked] = []
    for position, row in enumerate(top_rows):
        tied = top and int(row["score"]) == top[-1].score
        top.append(ranked_line({**row, "rank": top[-1].rank if tied else position + 1}))
    return top, {int(row["id"]): ranked_line(row) for row in asked}


def _universe_sql(subject: Subject, scope: Scope) -> tuple[str, list[Any]]:
    """Who a full table ranks: the scope's active advisors and whoever in it scored
    (``totals``), or every store of the scope."""
    if subject is ADVISORS:
        sql = f"SELECT u.id FROM {members.ADVISORS} u"
        sql += " WHERE (u.active OR u.id IN (SELECT id FROM totals))"
        if scope.kind == "store":
            return sql + " AND u.store = {}", [scope.store_id]
        if scope.kind == "region":
            return sql + " AND u.region = {}", [scope.region]
        return sql, []
    stores = f"SELECT u.id FROM {members.STORES} u"
    if scope.kind == "store":
        return stores + " WHERE u.id = {}", [scope.store_id]
    if scope.kind == "region":
        return stores + " WHERE u.region = {}", [scope.region]
    return stores, []


_COLUMNS = ("new_members", "points", "tasks_done", "tasks_converted")
