"""The read side: league tables, an advisor's own score, the ledger behind a line.

Ranking is standard competition ranking (1, 2, 2, 4) by score; inside a tie,
entries are listed in the order advisors (or stores) were registered with HQ, i.e.
by id. ``rank_change`` is the rank in the previous period of the same length minus
the rank now (positive: moved up), ``None`` for whoever had no score line then.

Two ways to rank, both in SQL:

- the plain table of one period by the default weights reads the top N straight
  off the ``(period, score DESC)`` index, ranks them with a window function (every
  line that scored more than one of them is among them, so their ranks are the
  table's), and finds ``me`` and last period's ranks as "how many scored more";
- a table that must consider everyone (a per-advisor store table, a contest with
  its own weights over a window, a table with fewer scorers than N) sums the
  period totals and ranks the whole scope with window functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.db import fetch, in_list, is_postgres
from core.periods import Period, previous
from incentives.rules import KINDS, Weights, load_weights
from members import queries as members
from members.accounts import Principal
from members.scopes import Scope
from tasks.queries import completion_by_advisor

MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Subject:
    name: str  # advisor | store
    table: str
    key: str


ADVISORS = Subject("advisor", "advisor_score", "advisor")
STORES = Subject("store", "store_score", "store")


def _scope_sql(subject: Subject, scope: Scope, alias: str) -> tuple[str, str, list[Any]]:
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


def _ranked(row: dict[str, Any]) -> Ranked:
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


async def _top(subject: Subject, scope: Scope, period: str, limit: int) -> list[Ranked]:
    join, where, args = _scope_sql(subject, scope, "s")
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
    return [_ranked(row) for row in rows]


async def _ranks_by_count(
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
        # Ranked off the (period, score, advisor) index alone, the scope's advisors
        # as a hashed set: a join per line to the advisor and their store costs more.
        member_args: list[Any] = [scope.store_id if scope.kind == "store" else scope.region]
        member = "a.store = {}" if scope.kind == "store" else "a.region = {}"
        rows = await fetch(
            "SELECT s.advisor AS id, s.new_members, s.points, s.tasks_done, s.tasks_converted,"
            " s.score, r.rank FROM (SELECT q.advisor, rank() OVER (ORDER BY q.score DESC) AS rank"
            f" FROM advisor_score q WHERE q.period = {{}} AND q.advisor IN (SELECT a.id FROM"
            f" {members.ADVISORS} a WHERE {member})) r JOIN advisor_score s"
            f" ON s.period = {{}} AND s.advisor = r.advisor WHERE r.advisor {cond}",
            period,
            *member_args,
            period,
            *id_args,
        )
        return {int(row["id"]): _ranked(row) for row in rows}
    join, where, args = _scope_sql(subject, scope, "q")
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
    return {int(row["id"]): _ranked(row) for row in rows}


async def _rank_of_nothing(subject: Subject, scope: Scope, period: str) -> int:
    """The rank of a subject in scope with no line yet: below everyone who scored."""
    join, where, args = _scope_sql(subject, scope, "s")
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
    join, where, scope_args = _scope_sql(subject, scope, "s")
    period_cond, period_args = in_list(periods, "text")
    universe, universe_args = _universe_sql(subject, scope)
    staff, staff_column, score = _valuation(per_advisor, "u.id")
    counts = ", ".join(f"COALESCE(t.{column}, 0) AS {column}" for column in _COLUMNS)
    also_cond, also_args = in_list(also or [0], "int")
    rows = await fetch(
        f"WITH {_totals_sql(subject, join, period_cond, where, len(periods), per_advisor)},"
        f" universe AS ({universe}),"
        f" valued AS (SELECT u.id, {counts}, {score} AS score{staff_column}"
        f" FROM universe u LEFT JOIN totals t ON t.id = u.id{staff}),"
        " ranked AS (SELECT v.*, rank() OVER (ORDER BY v.score DESC) AS rank,"
        " row_number() OVER (ORDER BY v.score DESC, v.id) AS pos FROM valued v)"
        f" SELECT * FROM ranked WHERE pos <= {{}} OR id {also_cond} ORDER BY pos",
        *period_args,
        *scope_args,
        *universe_args,
        *[weights.of(kind) for kind in KINDS],
        limit,
        *also_args,
    )
    wanted = set(also)
    top = [_ranked(row) for row in rows if int(row["pos"]) <= limit]
    return top, {int(row["id"]): _ranked(row) for row in rows if int(row["id"]) in wanted}


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
    join, where, scope_args = _scope_sql(subject, scope, "s")
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
        top.append(_ranked({**row, "rank": top[-1].rank if tied else position + 1}))
    return top, {int(row["id"]): _ranked(row) for row in asked}


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
    regions = await members.regions_of(principal.store_ids)
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
        card = (await members.advisor_cards([subject_id])).get(subject_id)
        store_id = None if card is None else card["store_id"]
    else:
        store_id = subject_id
    if store_id is None:
        return False
    if scope.kind == "store":
        return bool(store_id == scope.store_id)
    found = (await members.store_cards([store_id])).get(store_id)
    return found is not None and found["region"] == scope.region


# --- league tables -----------------------------------------------------------


@dataclass(slots=True)
class Table:
    entries: list[Ranked]
    mine: list[Ranked] = field(default_factory=list)


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
    if per_advisor:
        weights = await load_weights()
        top, own = await rank_all(subject, scope, [period.name], weights, limit, mine, True)
        _, earlier = await rank_all(
            subject, scope, [before], weights, 0, [r.id for r in top] + mine, True
        )
    else:
        top = await _top(subject, scope, period.name, limit)
        if len(top) < limit or (top and top[-1].score == 0):
            # Fewer scorers than places: the rest of the scope shares the last rank.
            weights = await load_weights()
            top, own = await rank_all(subject, scope, [period.name], weights, limit, mine)
        else:
            own = await _ranks_by_count(subject, scope, period.name, mine)
            for m in mine:
                if m not in own:
                    rank = await _rank_of_nothing(subject, scope, period.name)
                    own[m] = Ranked(m, rank, 0, 0, 0, 0, 0)
        earlier = await _ranks_by_count(subject, scope, before, [r.id for r in top] + mine)
    for line in [*top, *own.values()]:
        then = earlier.get(line.id)
        line.rank_change = None if then is None else then.rank - line.rank
    return Table(top, [own[m] for m in mine if m in own])


advisor_cards = members.advisor_cards
store_cards = members.store_cards


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
        found = await _ranks_by_count(ADVISORS, scope, period.name, [advisor_id])
        if advisor_id in found:
            line = found[advisor_id]
            ranks[name] = line.rank
        else:
            ranks[name] = await _rank_of_nothing(ADVISORS, scope, period.name)
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
