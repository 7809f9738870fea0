"""Monthly bonus statements: what each advisor is paid for a month, line by line.

A month's statement has, per advisor, a ``regular`` line (facts that counted in the
month itself) and an ``adjustment`` line per original day for facts that counted in
a month already closed when they arrived. Each line names the ledger rows behind it:
every fact booked in the month for that advisor and that day (or that month).

bonus = per new member × new members + per 1,000 points × points ÷ 1,000, rounded
half-up to the fen on each line; nothing when the advisor's completion rate for the
month is under the gate (no tasks to judge by passes it).

An open month's statement is computed from the ledger on each request; closing the
month writes its lines down, and from then on it is read back exactly as written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from audit import trail
from core import clock
from core.db import fetch, in_write_transaction, rows_source
from core.errors import Conflict
from core.events import bus
from core.money import fen_to_yuan, yuan_text
from core.periods import parse_period, previous
from incentives.events import MonthClosed
from incentives.rules import Rates, hold_ledger, month_has_ended, rates_for
from incentives.schemas import StatementFigures
from members import queries as members
from members import settlement
from tasks.queries import completion, completion_by_advisor

ONE_FEN = Decimal(1)


class Line(StatementFigures):
    """A statement line as the ledger and a frozen statement hold it: amounts in fen,
    and the ledger rows behind it."""

    advisor_id: int
    new_member_fen: int
    points_fen: int
    amount_fen: int
    entries: int
    first_entry: int
    last_entry: int


@dataclass(slots=True)
class Statement:
    month: str
    closed_at: datetime | None
    rates: Rates
    lines: list[Line]

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


def _gate_met(done: int, expired: int, gate_bp: int | None) -> bool:
    if gate_bp is None or done + expired == 0:
        return True
    return done * 10_000 >= gate_bp * (done + expired)


async def _live(month: str, advisor_id: int | None, rates: Rates) -> list[Line]:
    only = " AND f.advisor = {}" if advisor_id is not None else ""
    sums = ", ".join(
        f"SUM(CASE WHEN f.kind = '{kind}' THEN f.amount ELSE 0 END) AS {kind}"
        for kind in ("new_member", "points", "task_done", "task_converted")
    )
    facts = await fetch(
        "SELECT f.advisor, CASE WHEN f.counts_month = {} THEN NULL ELSE f.counts_on END"
        f" AS original_date, {sums}, COUNT(*) AS entries, MIN(f.id) AS first_entry,"
        f" MAX(f.id) AS last_entry FROM score_fact f WHERE f.booked_month = {{}}{only}"
        " GROUP BY 1, 2",
        month,
        month,
        *([advisor_id] if advisor_id is not None else []),
    )
    if not facts:
        return []
    period = parse_period(month)
    advisors = sorted({row["advisor"] for row in facts})
    people = await members.advisor_cards(advisors)
    worked = await completion_by_advisor(period.first, period.last, advisors)
    return _sorted([_line(row, people[row["advisor"]], worked, rates) for row in facts])


def _line(
    row: dict[str, Any], person: dict[str, Any], worked: dict[int, tuple[int, int]], rates: Rates
) -> Line:
    """A statement line from the ledger's sums for one advisor (and original day)."""
    done, expired = worked.get(row["advisor"], (0, 0))
    gate_met = _gate_met(done, expired, rates.completion_gate_bp)
    new_members, points = int(row["new_member"]), int(row["points"])
    new_member_fen = rates.per_new_member_fen * new_members
    points_fen = int(
        (Decimal(rates.per_1000_points_fen * points) / 1000).quantize(ONE_FEN, ROUND_HALF_UP)
    )
    original = row["original_date"]
    return Line(
        advisor_id=row["advisor"],
        advisor_code=person["code"],
        advisor_name=person["name"],
        store_code=person["store_code"],
        store_name=person["store_name"],
        line="regular" if original is None else "adjustment",
        original_date=None if original is None else clock.as_date(original),
        new_members=new_members,
        points=points,
        tasks_done=int(row["task_done"]),
        tasks_converted=int(row["task_converted"]),
        completion_rate=completion(done, expired),
        gate_met=gate_met,
        new_member_fen=new_member_fen,
        points_fen=points_fen,
        amount_fen=new_member_fen + points_fen if gate_met else 0,
        entries=int(row["entries"]),
        first_entry=int(row["first_entry"]),
        last_entry=int(row["last_entry"]),
    )


def _sorted(lines: list[Line]) -> list[Line]:
    """By store, advisor, the regular line first, then adjustments by original day."""
    return sorted(
        lines,
        key=lambda x: (
            x.store_code,
            x.advisor_code,
            x.line != "regular",
            x.original_date or date.min,
        ),
    )


# A frozen line as stored: (the Line field, its statement_line column, its type).
_FROZEN_COLUMNS = (
    ("advisor_id", "advisor", "int"),
    ("advisor_code", "advisor_code", "text"),
    ("advisor_name", "advisor_name", "text"),
    ("store_code", "store_code", "text"),
    ("store_name", "store_name", "text"),
    ("line", "line", "text"),
    ("original_date", "original_date", "date"),
    ("new_members", "new_members", "int"),
    ("points", "points", "bigint"),
    ("tasks_done", "tasks_done", "int"),
    ("tasks_converted", "tasks_converted", "int"),
    ("completion_rate", "completion_rate", "text"),
    ("gate_met", "gate_met", "bool"),
    ("new_member_fen", "new_member_fen", "bigint"),
    ("points_fen", "points_fen", "bigint"),
    ("amount_fen", "amount_fen", "bigint"),
    ("entries", "entries", "int"),
    ("first_entry", "first_entry", "bigint"),
    ("last_entry", "last_entry", "bigint"),
)
_FROZEN = tuple(name for name, _, _ in _FROZEN_COLUMNS)


async def statement(month: str, advisor_id: int | None = None) -> Statement:
    """The month's statement: as written at close, or as the ledger stands now."""
    closed = await fetch(
        "SELECT closed_at, per_new_member_fen, per_1000_points_fen, completion_gate_bp"
        " FROM closed_month WHERE month = {}",
        month,
    )
    if not closed:
        rates = await rates_for(month)
        return Statement(month, None, rates, await _live(month, advisor_id, rates))
    row = closed[0]
    only = " AND advisor = {}" if advisor_id is not None else ""
    stored = await fetch(
        f"SELECT {', '.join(f'{column} AS {name}' for name, column, _ in _FROZEN_COLUMNS)}"
        f" FROM statement_line WHERE month = {{}}{only} ORDER BY position",
        month,
        *([advisor_id] if advisor_id is not None else []),
    )
    lines = []
    for line in stored:
        values = dict(line)
        values["original_date"] = (
            None if line["original_date"] is None else clock.as_date(line["original_date"])
        )
        values["gate_met"] = bool(line["gate_met"])
        lines.append(Line(**{name: values[name] for name in _FROZEN}))
    gate = row["completion_gate_bp"]
    rates = Rates(
        month,
        int(row["per_new_member_fen"]),
        int(row["per_1000_points_fen"]),
        None if gate is None else int(gate),
    )
    closed_at = row["closed_at"]
    if isinstance(closed_at, str):
        closed_at = datetime.fromisoformat(closed_at)
    return Statement(month, closed_at, rates, lines)


async def close_month(month: str) -> tuple[bool, Statement]:
    """Freeze the month's statement. Returns (closed now, the statement); closing a
    closed month again changes nothing."""
    if not await month_has_ended(month):
        raise Conflict(f"{month} is not over in every store yet")

    async def work() -> bool:
        await hold_ledger(alone=True)
        if await fetch("SELECT 1 FROM closed_month WHERE month = {}", month):
            return False
        rates = await rates_for(month)
        lines = await _live(month, None, rates)
        if lines:
            columns = [("position", "int")] + [(c, t) for _, c, t in _FROZEN_COLUMNS]
            source, args = rows_source(
                columns,
                [
                    (i, *(getattr(line, name) for name in _FROZEN))
                    for i, line in enumerate(lines, start=1)
                ],
            )
            names = ", ".join(name for name, _ in columns)
            await fetch(
                f"INSERT INTO statement_line (month, {names}) SELECT {{}}, {names}"
                f" FROM ({source}) AS src",
                month,
                *args,
            )
        await fetch(
            "INSERT INTO closed_month (month, closed_at, per_new_member_fen,"
            " per_1000_points_fen, completion_gate_bp) VALUES ({}, {}, {}, {}, {})",
            month,
            clock.now(),
            rates.per_new_member_fen,
            rates.per_1000_points_fen,
            rates.completion_gate_bp,
        )
        await trail.record(
            "month_close",
            month,
            "close",
            None,
            {
                "lines": len(lines),
                "per_new_member": yuan_text(rates.per_new_member_fen),
                "per_1000_points": yuan_text(rates.per_1000_points_fen),
                "completion_gate_bp": rates.completion_gate_bp,
            },
        )
        # What the brand owes each store for points is frozen by the same close.
        await settlement.freeze(month)
        await bus.publish([MonthClosed(month, previous(parse_period(month)).name)])
        return True

    closed_now = await in_write_transaction(work)
    return closed_now, await statement(month)


# --- CSV for payroll ---------------------------------------------------------

CSV_HEADER = (
    "月份",
    "顾问编号",
    "顾问姓名",
    "门店编号",
    "门店名称",
    "类型",
    "原日期",
    "新会员数",
    "积分",
    "完成跟进",
    "转化",
    "完成率",
    "达标",
    "新会员奖金",
    "积分奖金",
    "应发奖金",
    "台账条数",
    "台账首条",
    "台账末条",
)
LINE_LABEL = {"regular": "本月", "adjustment": "补记"}


def to_csv(statement: Statement) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel shows the Chinese names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in statement.lines:
        writer.writerow(
            (
                statement.month,
                line.advisor_code,
                _cell(line.advisor_name),
                line.store_code,
                _cell(line.store_name),
                LINE_LABEL[line.line],
                line.original_date.isoformat() if line.original_date else "",
                line.new_members,
                line.points,
                line.tasks_done,
                line.tasks_converted,
                line.completion_rate or "",
                "是" if line.gate_met else "否",
                fen_to_yuan(line.new_member_fen),
                fen_to_yuan(line.points_fen),
                fen_to_yuan(line.amount_fen),
                line.entries,
                line.first_entry,
                line.last_entry,
            )
        )
    total = [""] * len(CSV_HEADER)
    total[0], total[CSV_HEADER.index("应发奖金")] = "合计", str(fen_to_yuan(statement.total_fen))
    writer.writerow(total)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(text: str) -> str:
    # A name starting with = + - @ would run as a formula in Excel.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def line_dict(line: Line) -> dict[str, Any]:
    return {name: getattr(line, name) for name in _FROZEN}


async def closed_months() -> list[dict[str, Any]]:
    """Every closed month (``month``, ``closed_at``), the latest first."""
    return await fetch("SELECT month, closed_at FROM closed_month ORDER BY month DESC")
