"""Imports of purchase history, one CSV row per receipt line. A receipt's lines are
adjacent in the file; its receipts are checked as the till's are and written by the
till's own statements (members.purchases), so balances, lots, the member's latest
purchase and formula stage, RN3's repeat flag and the store_day summaries (kept by
triggers) come out as a replay through the till would leave them. History is
history: no tasks for the past, no pushes, and score facts only with ``score``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core import clock
from core.csvfile import BadValue, Record
from core.db import fetch, in_list, in_write_transaction
from core.errors import FieldError, InvalidInput
from members.figures import mark_repeats
from members.imports import Run
from members.policy import PointsRule, load_policy, policy_history
from members.purchases import History, record_receipts
from members.receipts import Receipt, rejected
from members.schemas import ReceiptResult
from members.stores import StoreRef
from members.tiers import refresh_tiers
from members.tills import Checked, answered_in_order, check_groups


async def record_history(
    groups: Sequence[tuple[StoreRef, Sequence[Any]]], rule: PointsRule, history: History
) -> list[list[ReceiptResult]]:
    """Receipts of the chain's history for several stores, inside the caller's
    transaction: each store's checked as its till's are, then all of them written by
    the till's statements at once (a statement serves every store of the chunk), without
    telling the playbook. Returns each store's answers, in its receipts' order."""
    checked = await check_groups(groups, rule)
    writing = [r for c in checked for r in c.valid]
    answers = await record_receipts(writing, rule, history) if writing else {}
    return answered_in_order(checked, answers, _given_twice)


def _given_twice(_: Checked, repeat: Receipt) -> ReceiptResult:
    """A file is not a till retrying: the same receipt twice in it is a mistake."""
    return rejected(repeat.receipt_id, InvalidInput.on("receipt_id", "is given twice in the file"))


async def finish_history(history: History) -> None:
    """RN3's flags and the tiers of every member a chunk of history touched; in the
    chunk's transaction, once. A tier reached in the past makes no task."""
    members = sorted(history.touched)
    history.touched.clear()
    await mark_repeats(members)
    await refresh_tiers(
        members, clock.today(clock.zone(clock.DEFAULT_TIMEZONE)), await load_policy()
    )


async def prepare(run: Run) -> None:
    if run.kind == "purchases":
        run.history = History(score=run.score, policies=await policy_history())


@dataclass(slots=True)
class _Receipt:
    store_code: str
    lines: list[Record]
    body: dict[str, Any] | None = None  # the receipt as the till would send it
    bad: tuple[int, str, str] | None = None  # (line, field, message) of its first bad line


def _line(record: Record) -> dict[str, Any]:
    return {
        "sku": record.text("sku", max_length=32),
        "quantity": record.whole("quantity", minimum=1, maximum=10_000),
        # As the till sends it: the till's own check refuses a malformed amount.
        "amount": record.text("amount", max_length=20),
    }


def _receipts(chunk: list[Record]) -> list[_Receipt]:
    """The chunk's receipts, each with its lines read; a bad line spoils its receipt."""
    found: list[_Receipt] = []
    for record in chunk:
        v = record.values
        key = (v.get("store_code", "").strip(), v.get("receipt_id", "").strip())
        if (
            not found
            or (found[-1].store_code, found[-1].lines[0].values.get("receipt_id", "").strip())
            != key
        ):
            found.append(_Receipt(key[0], []))
        receipt = found[-1]
        receipt.lines.append(record)
        if receipt.bad is not None:
            continue
        try:
            if record.too_long:
                raise BadValue("line", "has a cell too long or with a NUL")
            line = _line(record)
            if receipt.body is None:
                receipt.body = {
                    "receipt_id": record.text("receipt_id", max_length=64),
                    "member_phone": record.text("member_phone", max_length=32),
                    "purchased_at": record.text("purchased_at", max_length=40),
                    "lines": [],
                }
                if advisor := record.optional("advisor_code", 16):
                    receipt.body["advisor_code"] = advisor
                record.text("store_code", max_length=16)
            receipt.body["lines"].append(line)
        except BadValue as exc:
            receipt.bad = (record.line, exc.field, exc.message)
    return found


def _reject_receipt(run: Run, receipt: _Receipt, line: int, field: str, message: str) -> None:
    run.reject(line, field, message)
    for record in receipt.lines:
        if record.line != line:
            run.reject(record.line, "receipt_id", f"its receipt has a refused line ({line})")


def _field_line(receipt: _Receipt, error: FieldError) -> tuple[int, str]:
    """A till error's field (``lines[2].sku``, ``member_phone``) as a file line and column."""
    if error.field.startswith("lines[") and "]" in error.field:
        index = int(error.field[6 : error.field.index("]")])
        column = error.field.split(".", 1)[1] if "." in error.field else "sku"
        if index < len(receipt.lines):
            return receipt.lines[index].line, column
    return receipt.lines[0].line, "store_code" if error.field == "store" else error.field


async def purchases(run: Run, chunk: list[Record]) -> None:
    receipts = _receipts(chunk)
    codes = sorted({r.store_code for r in receipts if r.store_code})
    stores: dict[str, StoreRef] = {}
    if codes:
        cond, args = in_list(codes, "text")
        for row in await fetch(f"SELECT id, code, timezone FROM store WHERE code {cond}", *args):
            stores[row["code"]] = StoreRef(row["id"], row["code"], row["timezone"])
    by_store: dict[str, list[_Receipt]] = defaultdict(list)
    for receipt in receipts:
        if receipt.bad is not None:
            _reject_receipt(run, receipt, *receipt.bad)
        elif receipt.store_code not in stores:
            _reject_receipt(
                run, receipt, receipt.lines[0].line, "store_code", f"no store {receipt.store_code}"
            )
        else:
            by_store[receipt.store_code].append(receipt)
    if not by_store:
        return

    codes = sorted(by_store)

    async def work() -> list[tuple[_Receipt, Any]]:
        run.history.touched.clear()  # a retried transaction starts again
        groups = [(stores[code], [r.body for r in by_store[code]]) for code in codes]
        answered: list[tuple[_Receipt, Any]] = []
        for code, results in zip(
            codes, await record_history(groups, run.rule, run.history), strict=True
        ):
            answered.extend(zip(by_store[code], results, strict=True))
        await finish_history(run.history)
        return answered

    answered = await in_write_transaction(work)
    created = unchanged = 0
    for receipt, result in answered:
        if result.status == "created":
            created += 1
        elif result.status == "duplicate":
            unchanged += 1
        else:
            errors = result.errors or [FieldError("receipt_id", result.error or "refused")]
            line, column = _field_line(receipt, errors[0])
            message = errors[0].message
            if column == "receipt_id" and "already used" in message:
                message = "was imported before with other lines, member or time"
            _reject_receipt(run, receipt, line, column, message)
    run.count(created, 0, unchanged)
