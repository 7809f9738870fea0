"""What advisors are scored and paid by: the league tables' default weights (in
hundredths: a weight of 0.1 per point is 10) and the bonus rates in force from a
month on; and the ledger lock a change of them takes alone.

Writers of facts and the few ledger-wide operations (closing a month, re-weighting,
rebuilding totals) exclude each other with one PostgreSQL advisory lock: writers
share it, the operations take it alone (a re-weighting and a rebuild a short slice
at a time, ``incentives.slices``). SQLite already runs one writer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec

from audit import trail
from core import clock
from core.db import count_changed, fetch, hold_books, in_write_transaction, is_postgres
from core.errors import InvalidInput
from core.money import decimal_of, fen_of, yuan_text
from core.periods import month_of, month_or_error, next_month, parse_period
from incentives.schemas import BonusRatesIn, ScoreWeightsIO
from incentives.slices import Between, Pace, in_slice
from members.queries import timezones_in_use

KINDS = ("new_member", "points", "task_done", "task_converted")
HUNDRED = Decimal(100)


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

    def shown(self) -> dict[str, Decimal]:
        """As the API shows them: two places (``0.10``)."""
        return {kind: value.quantize(Decimal("0.01")) for kind, value in self.as_decimals().items()}

    @classmethod
    def sent(cls, weights: ScoreWeightsIO | None, base: Weights) -> Weights:
        """Weights as a request sends them (``{"points": "0.1"}``); kinds left out keep
        ``base``'s."""
        given = {} if weights is None else msgspec.structs.asdict(weights)
        return cls.from_decimals(
            {k: decimal_of(v, f"weights.{k}") for k, v in given.items() if v is not None}, base
        )

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
    """Hundredths as a decimal with two places ("-0.05"): by integers, as every table
    line is written."""
    whole, cents = divmod(abs(hundredths), 100)
    return f"{'-' if hundredths < 0 else ''}{whole}.{cents:02d}"


async def hold_ledger(alone: bool = False) -> None:
    """Take the ledger lock for the rest of the transaction (shared by fact writers,
    alone for a close, a re-weighting or a rebuild)."""
    await hold_books(alone)


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


async def set_weights(weights: Weights, between: Between = None) -> Weights:
    """New default weights: every total is re-scored with them, so past and present
    league tables rank by the same rule. The re-scoring goes in slices (the tills
    book facts between them, by the new weights already); until the last slice a
    table may rank some lines by the old weights."""
    await save_weights(weights)
    await rescore(between)
    return weights


async def save_weights(weights: Weights) -> None:
    """The new weights in force, for every fact booked from now on; the totals kept
    so far are re-scored by ``rescore``."""

    async def work() -> None:
        await hold_ledger(alone=True)
        before = await load_weights()
        await trail.record("score_weights", "default", "update", before.shown(), weights.shown())
        await fetch(
            "UPDATE score_weights SET new_member = {}, points = {}, task_done = {},"
            " task_converted = {}, updated_at = {}",
            weights.new_member,
            weights.points,
            weights.task_done,
            weights.task_converted,
            clock.now(),
        )

    await in_write_transaction(work)


# Totals in the first slice of a re-scoring; later slices are sized by time.
FIRST_RESCORE = 500


async def rescore(between: Between = None) -> Pace:
    """Every total's score by the weights in force, a slice of totals at a time, the
    newest periods first (the ones the tables show). A total already right is left
    alone, so running it again after an interruption only finishes the work.

    The slices share the ledger with the tills rather than take it alone: the new
    weights were in force before the first slice (``save_weights`` waited for every
    till booking by the old ones), so a till's increment is by the new weights
    whether its total was re-scored yet or not. A slice locks its totals in key
    order, the order a till locks the totals it adds to, so the two queue on a
    total rather than deadlock; a till waits at most for one slice."""
    done = Pace(0)
    for table, subject in (("advisor_score", "advisor"), ("store_score", "store")):
        pace = Pace(FIRST_RESCORE)
        edge: tuple[str, int] | None = None
        while True:
            edge, changed = await in_slice(
                partial(_rescore_slice, table, subject, edge, pace.size),
                pace,
                between,
                alone=False,
            )
            pace.written += changed
            if edge is None:
                break
        done.add(pace)
    return done


async def _rescore_slice(
    table: str, subject: str, above: tuple[str, int] | None, size: int
) -> tuple[tuple[str, int] | None, int]:
    """The ``size`` totals after ``above`` in (period, subject) descending order
    re-scored; returns the last of them (None when none is left after them) and how
    many totals changed."""
    weights = await load_weights()
    after, after_args = "", []
    if above is not None:
        after, after_args = f" AND (period, {subject}) < ({{}}, {{}})", list(above)
    edge = await fetch(
        f"SELECT period, {subject} AS who FROM {table} WHERE true{after}"
        f" ORDER BY period DESC, {subject} DESC LIMIT 1 OFFSET {{}}",
        *after_args,
        size - 1,
    )
    upto, upto_args = "", []
    if edge:
        upto = f" AND (period, {subject}) >= ({{}}, {{}})"
        upto_args = [edge[0]["period"], edge[0]["who"]]
    score = (
        f"CAST(new_members AS BIGINT) * {int(weights.new_member)}"
        f" + points * {int(weights.points)} + CAST(tasks_done AS BIGINT) * {int(weights.task_done)}"
        f" + CAST(tasks_converted AS BIGINT) * {int(weights.task_converted)}"
    )
    if is_postgres():  # the slice's totals locked in key order first (see rescore)
        mine = (
            f"SELECT id FROM {table} WHERE true{after}{upto} ORDER BY period, {subject} FOR UPDATE"
        )
        sql = (
            f"UPDATE {table} SET score = {score} FROM ({mine}) AS mine"
            f" WHERE {table}.id = mine.id AND {table}.score <> {score}"
        )
    else:  # one writer at a time
        sql = f"UPDATE {table} SET score = {score} WHERE score <> {score}{after}{upto}"
    changed = await count_changed(sql, *after_args, *upto_args)
    last = (str(edge[0]["period"]), int(edge[0]["who"])) if edge else None
    return last, changed


@dataclass(frozen=True, slots=True)
class Rates:
    effective_from: str
    per_new_member_fen: int
    per_1000_points_fen: int
    completion_gate_bp: int | None


def rates_from(sent: BonusRatesIn) -> Rates:
    """Rates as HQ sends them: yuan exact to the fen, a completion gate from 0 to 1 to
    four places (basis points inside)."""
    month = month_or_error(sent.effective_from, "effective_from")
    gate_bp: int | None = None
    if sent.completion_gate is not None:
        gate = decimal_of(sent.completion_gate, "completion_gate")
        if not 0 <= gate <= 1:
            raise InvalidInput.on("completion_gate", "must be from 0 to 1")
        bp = gate * 10_000
        if bp != bp.to_integral_value():
            raise InvalidInput.on("completion_gate", "has more than four decimal places")
        gate_bp = int(bp)
    return Rates(
        month,
        fen_of(sent.per_new_member, "per_new_member"),
        fen_of(sent.per_1000_points, "per_1000_points"),
        gate_bp,
    )


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


def _rates_shown(row: dict[str, Any]) -> dict[str, Any]:
    """Rates as HQ reads them on the trail: yuan, and the gate as a fraction."""
    gate = row["completion_gate_bp"]
    return {
        "per_new_member": yuan_text(int(row["per_new_member_fen"])),
        "per_1000_points": yuan_text(int(row["per_1000_points_fen"])),
        "completion_gate": None if gate is None else str(Decimal(int(gate)) / 10_000),
    }


async def set_rates(rates: Rates) -> Rates:
    """Rates from a month on. Alone on the ledger, so that a month being closed meanwhile
    pays every line at the rates its statement shows."""

    async def work() -> None:
        await hold_ledger(alone=True)
        before = await fetch(
            "SELECT per_new_member_fen, per_1000_points_fen, completion_gate_bp"
            " FROM bonus_rates WHERE effective_from = {}",
            rates.effective_from,
        )
        await trail.record(
            "bonus_rates",
            rates.effective_from,
            "update" if before else "create",
            _rates_shown(before[0]) if before else None,
            _rates_shown(
                {
                    "per_new_member_fen": rates.per_new_member_fen,
                    "per_1000_points_fen": rates.per_1000_points_fen,
                    "completion_gate_bp": rates.completion_gate_bp,
                }
            ),
        )
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


async def month_has_ended(month: str) -> bool:
    """True once the month is over in every store's time zone."""
    last = month_of(parse_period(month).first).last
    zones = await timezones_in_use()
    return all(clock.today(clock.zone(z)) > last for z in zones or [clock.DEFAULT_TIMEZONE])
