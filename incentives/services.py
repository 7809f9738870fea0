"""The score ledger: facts appended in the transaction of what caused them, and the
league-table totals kept beside them.

- ``new_member``: a member who joined, credited to the recruiting advisor;
- ``points``: points a purchase earned, credited to the receipt's advisor (else the
  member's owning advisor); redemptions never take them back;
- ``task_done`` / ``task_converted``: reconciled from the task itself whenever the
  tasks domain says a task settled, so a task undone by a do-not-contact request
  gets a reversing row and a task done again after that gets a new one.

Every fact names its source (``source_key`` is unique), so a replayed event adds
nothing. Facts count on their store-local day; for pay they are booked in their own
month, or in the first open month after it when that month was closed before the
fact arrived (an adjustment on the next statement, never an edit of a closed one).

Writers of facts and the few ledger-wide operations (closing a month, re-weighting,
rebuilding totals) exclude each other with one PostgreSQL advisory lock: writers
share it, the operations take it alone. SQLite already runs one writer at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from members import clock
from members.db import (
    defer,
    fetch,
    in_list,
    in_write_transaction,
    insert_count,
    is_postgres,
    rows_source,
)
from members.errors import InvalidInput
from members.events import MemberJoined, PurchaseRecorded
from members.periods import keys_of, month_key, month_of, next_month, parse_period, week_key

KINDS = ("new_member", "points", "task_done", "task_converted")
LEDGER_LOCK = 0x7449_414E  # "tIAN": the advisory lock id of the score ledger
LEDGER = "score_ledger"  # the key its facts are queued under until commit
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Fact:
    advisor_id: int
    store_id: int
    kind: str
    amount: int
    counts_on: date
    source_key: str
    member_id: int | None = None
    purchase_id: int | None = None
    task_id: int | None = None


@dataclass(frozen=True, slots=True)
class Weights:
    """Score per unit of each fact, in hundredths (0.1 a point is 10)."""

    new_member: int
    points: int
    task_done: int
    task_converted: int

    def of(self, kind: str) -> int:
        value: int = getattr(self, kind)
        return value

    def as_decimals(self) -> dict[str, Decimal]:
        return {kind: Decimal(self.of(kind)) / HUNDRED for kind in KINDS}

    @classmethod
    def from_decimals(cls, given: dict[str, Decimal], base: Weights | None = None) -> Weights:
        """From weights as sent (``{"points": "0.1"}``); kinds left out keep ``base``'s."""
        values: dict[str, int] = {}
        for kind in KINDS:
            if kind not in given:
                if base is None:
                    raise InvalidInput.on(f"weights.{kind}", "is required")
                values[kind] = base.of(kind)
                continue
            weight = given[kind]
            if not weight.is_finite() or weight < 0 or weight > 1_000_000:
                raise InvalidInput.on(f"weights.{kind}", "must be from 0 to 1000000")
            hundredths = weight * HUNDRED
            if hundredths != hundredths.to_integral_value():
                raise InvalidInput.on(f"weights.{kind}", "has more than two decimal places")
            values[kind] = int(hundredths)
        unknown = set(given) - set(KINDS)
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidInput.on(f"weights.{name}", f"is not one of {', '.join(KINDS)}")
        return cls(**values)


def score_text(hundredths: int) -> str:
    return str((Decimal(hundredths) / HUNDRED).quantize(Decimal("0.01")))


# --- the lock and the configuration ------------------------------------------


async def hold_ledger(alone: bool = False) -> None:
    """Take the ledger lock for the rest of the transaction (shared by fact writers,
    alone for a close, a re-weighting or a rebuild)."""
    if is_postgres():
        kind = "" if alone else "_shared"
        await fetch(f"SELECT pg_advisory_xact_lock{kind}({{}}::bigint)", LEDGER_LOCK)


async def load_weights() -> Weights:
    rows = await fetch(
        "SELECT new_member, points, task_done, task_converted FROM score_weights"
        " ORDER BY id LIMIT 1"
    )
    return Weights(**{k: int(v) for k, v in rows[0].items()})


async def closed_months(since: str) -> set[str]:
    rows = await fetch("SELECT month FROM closed_month WHERE month >= {}", since)
    return {row["month"] for row in rows}


def booking(month: str, closed: set[str]) -> str:
    while month in closed:
        month = next_month(month)
    return month


# --- appending facts ---------------------------------------------------------


async def append_facts(facts: list[Fact]) -> None:
    """Append facts in the caller's transaction, once, just before it commits (with
    every other fact of that transaction); facts whose source is already in the
    ledger are skipped."""
    if facts and not defer(LEDGER, facts, _write):
        await _write(list(facts))


async def credit_tasks(task_ids: list[int]) -> None:
    """Tasks whose done or converted state may have changed: their facts are
    reconciled when the transaction is about to commit, against its final state."""
    if task_ids and not defer(LEDGER, [SettledTask(t) for t in task_ids], _write):
        await _write([SettledTask(t) for t in task_ids])


@dataclass(frozen=True, slots=True)
class SettledTask:
    task_id: int


async def _write(queued: list[Fact | SettledTask]) -> int:
    """Write a transaction's facts: the queued ones and its tasks' reconciliations, in
    one statement, and add them to the totals. Returns how many were new."""
    facts = [f for f in queued if isinstance(f, Fact)]
    settled = sorted({f.task_id for f in queued if isinstance(f, SettledTask)})
    if settled:
        facts += await _task_facts(settled)
    if not facts:
        return 0
    await hold_ledger()
    closed = await closed_months(min(month_key(f.counts_on) for f in facts))
    weights = await load_weights()
    source, args = rows_source(
        [
            ("advisor", "int"),
            ("store", "int"),
            ("kind", "text"),
            ("amount", "int"),
            ("counts_on", "date"),
            ("counts_week", "text"),
            ("counts_month", "text"),
            ("booked_month", "text"),
            ("source_key", "text"),
            ("member", "bigint"),
            ("purchase", "bigint"),
            ("task", "bigint"),
        ],
        [
            (
                f.advisor_id,
                f.store_id,
                f.kind,
                f.amount,
                f.counts_on,
                week_key(f.counts_on),
                month_key(f.counts_on),
                booking(month_key(f.counts_on), closed),
                f.source_key,
                f.member_id,
                f.purchase_id,
                f.task_id,
            )
            for f in sorted(facts, key=lambda f: f.source_key)
        ],
    )
    inserted = await fetch(
        "INSERT INTO score_fact (advisor, store, kind, amount, counts_on, counts_week,"
        " counts_month, booked_month, source_key, member, purchase, task, recorded_at)"
        " SELECT advisor, store, kind, amount, counts_on, counts_week, counts_month,"
        f" booked_month, source_key, member, purchase, task, {{}} FROM ({source}) AS src"
        " WHERE true ON CONFLICT (source_key) DO NOTHING RETURNING source_key",
        clock.now(),
        *args,
    )
    new_keys = {row["source_key"] for row in inserted}
    made = [f for f in facts if f.source_key in new_keys]
    await _add_to_totals("advisor_score", "advisor", made, lambda f: f.advisor_id, weights)
    await _add_to_totals("store_score", "store", made, lambda f: f.store_id, weights)
    return len(made)


async def _add_to_totals(
    table: str, subject: str, facts: list[Fact], subject_of: Any, weights: Weights
) -> None:
    if not facts:
        return
    totals: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for f in facts:
        column = KINDS.index(f.kind)
        for period in keys_of(f.counts_on):
            row = totals[(period, subject_of(f))]
            row[column] += f.amount
            row[4] += f.amount * weights.of(f.kind)
    source, args = rows_source(
        [
            ("period", "text"),
            ("subject", "int"),
            ("new_members", "int"),
            ("points", "bigint"),
            ("tasks_done", "int"),
            ("tasks_converted", "int"),
            ("score", "bigint"),
        ],
        [(period, who, *row) for (period, who), row in sorted(totals.items())],
    )
    # Rows go in key order so that two writers meeting on the same totals queue
    # rather than deadlock.
    await fetch(
        f"INSERT INTO {table} (period, {subject}, new_members, points, tasks_done,"
        " tasks_converted, score) SELECT period, subject, new_members, points, tasks_done,"
        f" tasks_converted, score FROM ({source}) AS src WHERE true ORDER BY period, subject"
        f" ON CONFLICT (period, {subject}) DO UPDATE SET"
        f" new_members = {table}.new_members + excluded.new_members,"
        f" points = {table}.points + excluded.points,"
        f" tasks_done = {table}.tasks_done + excluded.tasks_done,"
        f" tasks_converted = {table}.tasks_converted + excluded.tasks_converted,"
        f" score = {table}.score + excluded.score",
        *args,
    )


# --- the listeners -----------------------------------------------------------


async def credit_new_members(joined: list[MemberJoined]) -> None:
    await append_facts(
        [
            Fact(
                advisor_id=j.recruited_by,
                store_id=j.store_id,
                kind="new_member",
                amount=1,
                counts_on=j.joined_on,
                source_key=f"new_member:{j.member_id}",
                member_id=j.member_id,
            )
            for j in joined
            if j.recruited_by is not None
        ]
    )


async def credit_purchases(recorded: list[PurchaseRecorded]) -> None:
    await append_facts(
        [
            Fact(
                advisor_id=p.advisor_id,
                store_id=p.store_id,
                kind="points",
                amount=p.points_earned,
                counts_on=p.purchased_on,
                source_key=f"points:{p.purchase_id}",
                member_id=p.member_id,
                purchase_id=p.purchase_id,
            )
            for p in recorded
            if p.advisor_id is not None and p.points_earned > 0
        ]
    )


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def _task_facts(task_ids: list[int]) -> list[Fact]:
    """What brings the ledger in line with the tasks now: a done task counts one
    ``task_done`` for its advisor on the day of the call, a converted one a
    ``task_converted`` on the day of the purchase; whatever the ledger holds beyond
    that is reversed on the day it was counted on."""
    cond, args = in_list(task_ids, "bigint")
    tasks = await fetch(
        "SELECT t.id, t.member, t.assignee, t.store, t.status, t.done_at, s.timezone,"
        " p.purchased_on AS converted_on FROM task t JOIN store s ON s.id = t.store"
        f" LEFT JOIN purchase p ON p.id = t.converted_purchase WHERE t.id {cond}",
        *args,
    )
    wanted: dict[tuple[int, str, int, int, date], int] = {}
    members: dict[int, int] = {}
    for t in tasks:
        members[t["id"]] = t["member"]
        if t["status"] != "done" or t["assignee"] is None or t["done_at"] is None:
            continue
        done_on = clock.local_date(_instant(t["done_at"]), clock.zone(t["timezone"]))
        wanted[(t["id"], "task_done", t["assignee"], t["store"], done_on)] = 1
        if t["converted_on"] is not None:
            converted_on = clock.as_date(t["converted_on"])
            wanted[(t["id"], "task_converted", t["assignee"], t["store"], converted_on)] = 1
    held: dict[tuple[int, str, int, int, date], int] = {}
    rows_so_far: dict[tuple[int, str], int] = defaultdict(int)
    for row in await fetch(
        "SELECT task, kind, advisor, store, counts_on, SUM(amount) AS net, COUNT(*) AS n"
        f" FROM score_fact WHERE task {cond} GROUP BY task, kind, advisor, store, counts_on",
        *args,
    ):
        key = (
            row["task"],
            row["kind"],
            row["advisor"],
            row["store"],
            clock.as_date(row["counts_on"]),
        )
        held[key] = int(row["net"])
        rows_so_far[(row["task"], row["kind"])] += int(row["n"])
    facts = []
    for key in sorted(set(wanted) | set(held)):
        change = wanted.get(key, 0) - held.get(key, 0)
        if change == 0:
            continue
        task_id, kind, advisor_id, store_id, counts_on = key
        rows_so_far[(task_id, kind)] += 1
        facts.append(
            Fact(
                advisor_id=advisor_id,
                store_id=store_id,
                kind=kind,
                amount=change,
                counts_on=counts_on,
                source_key=f"{kind}:{task_id}:{rows_so_far[(task_id, kind)]}",
                member_id=members.get(task_id),
                task_id=task_id,
            )
        )
    return facts


# --- weights and rates -------------------------------------------------------


async def set_weights(weights: Weights) -> Weights:
    """New default weights: every total is re-scored with them, so past and present
    league tables rank by the same rule."""

    async def work() -> Weights:
        await hold_ledger(alone=True)
        await fetch(
            "UPDATE score_weights SET new_member = {}, points = {}, task_done = {},"
            " task_converted = {}, updated_at = {}",
            weights.new_member,
            weights.points,
            weights.task_done,
            weights.task_converted,
            clock.now(),
        )
        for table in ("advisor_score", "store_score"):
            await fetch(
                f"UPDATE {table} SET score = CAST(new_members AS BIGINT) * {{}}"
                " + points * {} + CAST(tasks_done AS BIGINT) * {}"
                " + CAST(tasks_converted AS BIGINT) * {}",
                weights.new_member,
                weights.points,
                weights.task_done,
                weights.task_converted,
            )
        return weights

    return await in_write_transaction(work)


@dataclass(frozen=True, slots=True)
class Rates:
    effective_from: str
    per_new_member_fen: int
    per_1000_points_fen: int
    completion_gate_bp: int | None


async def rates_for(month: str) -> Rates:
    rows = await fetch(
        "SELECT effective_from, per_new_member_fen, per_1000_points_fen, completion_gate_bp"
        " FROM bonus_rates WHERE effective_from <= {} ORDER BY effective_from DESC LIMIT 1",
        month,
    )
    if not rows:
        return Rates("2000-01", 0, 0, None)
    row = rows[0]
    gate = row["completion_gate_bp"]
    return Rates(
        row["effective_from"],
        int(row["per_new_member_fen"]),
        int(row["per_1000_points_fen"]),
        None if gate is None else int(gate),
    )


async def set_rates(rates: Rates) -> Rates:
    """Rates from a month on. Alone on the ledger, so that a month being closed meanwhile
    pays every line at the rates its statement shows."""

    async def work() -> None:
        await hold_ledger(alone=True)
        await fetch(
            "INSERT INTO bonus_rates (effective_from, per_new_member_fen, per_1000_points_fen,"
            " completion_gate_bp, updated_at) VALUES ({}, {}, {}, {}, {})"
            " ON CONFLICT (effective_from) DO UPDATE SET"
            " per_new_member_fen = excluded.per_new_member_fen,"
            " per_1000_points_fen = excluded.per_1000_points_fen,"
            " completion_gate_bp = excluded.completion_gate_bp, updated_at = excluded.updated_at",
            rates.effective_from,
            rates.per_new_member_fen,
            rates.per_1000_points_fen,
            rates.completion_gate_bp,
            clock.now(),
        )

    await in_write_transaction(work)
    return await rates_for(rates.effective_from)


def month_or_error(text: str, field: str = "period") -> str:
    try:
        period = parse_period(text)
    except ValueError as exc:
        raise InvalidInput.on(field, str(exc)) from None
    if period.name != month_key(period.first) or period.days < 28:
        raise InvalidInput.on(field, "give a month, like 2026-11")
    return period.name


async def month_has_ended(month: str) -> bool:
    """True once the month is over in every store's time zone."""
    last = month_of(parse_period(month).first).last
    zones = [row["timezone"] for row in await fetch("SELECT DISTINCT timezone FROM store")]
    return all(clock.today(clock.zone(z)) > last for z in zones or [clock.DEFAULT_TIMEZONE])


# --- rebuilding the totals ---------------------------------------------------


@dataclass(slots=True)
class RebuildReport:
    months: list[str]
    advisor_rows: int = 0
    store_rows: int = 0
    seconds: float = 0.0


async def open_months() -> list[str]:
    rows = await fetch(
        "SELECT DISTINCT counts_month FROM score_fact WHERE counts_month NOT IN"
        " (SELECT month FROM closed_month) ORDER BY counts_month"
    )
    return [row["counts_month"] for row in rows]


def _weeks_of(month: str) -> list[str]:
    period = parse_period(month)
    weeks: list[str] = []
    day = period.first
    while day <= period.last:
        if not weeks or weeks[-1] != week_key(day):
            weeks.append(week_key(day))
        day += timedelta(days=1)
    return weeks


async def rebuild(month: str | None = None) -> RebuildReport:
    """Recompute the totals of the days, ISO weeks and month of ``month`` (or of every
    open month) from the ledger alone. The incremental path must agree exactly."""
    started = datetime.now()
    months = [month] if month is not None else await open_months()
    report = RebuildReport(months)
    for m in months:
        advisor_rows, store_rows = await in_write_transaction(partial(_rebuild_month, m))
        report.advisor_rows += advisor_rows
        report.store_rows += store_rows
    report.seconds = (datetime.now() - started).total_seconds()
    return report


async def _rebuild_month(month: str) -> tuple[int, int]:
    await hold_ledger(alone=True)
    weights = [(await load_weights()).of(kind) for kind in KINDS]
    days = [day.isoformat() for day in _days_of(month)]
    weeks = _weeks_of(month)
    sums = ", ".join(f"SUM(CASE WHEN kind = '{kind}' THEN amount ELSE 0 END)" for kind in KINDS)
    score = " + ".join(
        f"SUM(CASE WHEN kind = '{kind}' THEN amount ELSE 0 END) * {{}}" for kind in KINDS
    )
    day_cond, day_args = in_list(days, "text")
    week_cond, week_args = in_list(weeks, "text")
    made = []
    for table, subject in (("advisor_score", "advisor"), ("store_score", "store")):
        await fetch(f"DELETE FROM {table} WHERE period {day_cond}", *day_args)
        await fetch(f"DELETE FROM {table} WHERE period {week_cond}", *week_args)
        await fetch(f"DELETE FROM {table} WHERE period = {{}}", month)
        rows = 0
        # A week that runs into the next or last month is recomputed whole.
        for period_of, where, where_args in (
            ("CAST(counts_on AS TEXT)", "counts_month = {}", [month]),
            ("counts_week", f"counts_week {week_cond}", week_args),
            ("counts_month", "counts_month = {}", [month]),
        ):
            rows += await insert_count(
                f"INSERT INTO {table} (period, {subject}, new_members, points, tasks_done,"
                f" tasks_converted, score) SELECT {period_of}, {subject}, {sums}, {score}"
                f" FROM score_fact WHERE {where} GROUP BY {period_of}, {subject}",
                *weights,
                *where_args,
            )
        made.append(rows)
    return made[0], made[1]


def _days_of(month: str) -> Iterable[date]:
    period = parse_period(month)
    day = period.first
    while day <= period.last:
        yield day
        day += timedelta(days=1)
