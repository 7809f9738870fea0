"""What the tills send: a batch of one store's receipts, or one receipt at a time.

Single receipts are written together with whatever other tills sent meanwhile (a
group commit): a receipt arriving while a transaction is being written waits for it
and goes into the next one with every other receipt that arrived meanwhile, from
any store, in one set of statements (``members.purchases`` writes several stores at
once). An idle server writes a lone receipt at once; a busy one, many per
transaction instead of queueing a transaction each. Each receipt is still checked
and answered on its own, and a replay still gets its first answer.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from core import metrics
from core.db import in_write_transaction
from core.errors import Conflict, InvalidInput
from members.policy import PointsRule
from members.purchases import record_receipts
from members.receipts import (
    REUSED_RECEIPT,
    Receipt,
    named_in,
    receipt_id_of,
    resolve,
    split_repeats,
)
from members.schemas import PurchaseOut, ReceiptResult
from members.stores import StoreRef

# Receipts in one group commit: enough to carry sixteen busy tills and more, few
# enough that one transaction stays short.
MAX_GROUP = 64


@dataclass(slots=True)
class Checked:
    """One store's receipts after the checks, before anything is written."""

    results: list[ReceiptResult | None]  # the refused ones already answered
    valid: list[Receipt]
    repeats: list[Receipt]  # exact repeats of an earlier receipt in the same batch
    first_by_id: dict[str, Receipt]


async def check_groups(
    groups: Sequence[tuple[StoreRef, Sequence[Any]]], rule: PointsRule
) -> list[Checked]:
    """Each store's receipts checked as its till's are; the products and advisors they
    name are read once for all the stores."""
    split = []
    for store, raws in groups:
        results: list[ReceiptResult | None] = [None] * len(raws)
        split.append((store, results, *split_repeats(store, raws, results)))
    named = await named_in(
        {sku for *_, accepted, _, _ in split for r in accepted for sku, _, _ in r.lines},
        {r.advisor_code for *_, accepted, _, _ in split for r in accepted if r.advisor_code},
    )
    return [
        Checked(results, resolve(store, accepted, rule, results, named), repeats, first)
        for store, results, accepted, repeats, first in split
    ]


def answered_in_order(
    checked: list[Checked],
    answers: dict[tuple[int, str], ReceiptResult],
    repeated: Callable[[Checked, Receipt], ReceiptResult],
) -> list[list[ReceiptResult]]:
    """Each store's answers in its receipts' order: the written ones from ``answers``,
    a repeat inside the batch by ``repeated``, the refused ones as checked."""
    answered = []
    for c in checked:
        for r in c.valid:
            c.results[r.position] = answers[r.key]
        for r in c.repeats:
            c.results[r.position] = repeated(c, r)
        answered.append([r for r in c.results if r is not None])
    return answered


def _as_first_answered(checked: Checked, repeat: Receipt) -> ReceiptResult:
    """A till's repeat of a receipt in the same batch gets the first one's answer."""
    first = checked.results[checked.first_by_id[repeat.receipt_id].position]
    assert first is not None
    if first.status == "rejected":
        return first
    return msgspec.structs.replace(first, status="duplicate")


async def ingest_groups(
    groups: Sequence[tuple[StoreRef, Sequence[Any]]], rule: PointsRule
) -> list[list[ReceiptResult]]:
    """Receipts of one or several stores in one transaction; each store's answers in
    its receipts' order."""
    checked = await check_groups(groups, rule)
    valid = [r for c in checked for r in c.valid]
    answers = await in_write_transaction(lambda: record_receipts(valid, rule)) if valid else {}
    answered = answered_in_order(checked, answers, _as_first_answered)
    for status, n in Counter(r.status for rs in answered for r in rs).items():
        metrics.count(metrics.RECEIPTS, status, n)
    return answered


async def ingest_purchases(
    store: StoreRef, raws: Sequence[Any], rule: PointsRule
) -> list[ReceiptResult]:
    """Record up to a batch of receipts for one store in one transaction."""
    (answered,) = await ingest_groups([(store, raws)], rule)
    return answered


async def record_in_transaction(store: StoreRef, raw: Any, rule: PointsRule) -> ReceiptResult:
    """One receipt written in the caller's write transaction (an O2O order delivered
    becomes the store's purchase in the order's own transaction)."""
    (checked,) = await check_groups([(store, [raw])], rule)
    if checked.valid:
        receipt = checked.valid[0]
        checked.results[0] = (await record_receipts([receipt], rule))[receipt.key]
    result = checked.results[0]
    assert result is not None
    return result


# --- one receipt at a time: the group commit --------------------------------------


@dataclass(slots=True)
class _Waiting:
    store: StoreRef
    raw: Any
    rule: PointsRule
    answer: asyncio.Future[ReceiptResult]


@dataclass(slots=True)
class _Queue:
    waiting: list[_Waiting] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None


# One queue an event loop (a server worker has one; tests make several).
_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()


async def record_single(store: StoreRef, raw: Any, rule: PointsRule) -> ReceiptResult:
    """One receipt, written with whatever other single receipts are waiting."""
    loop = asyncio.get_running_loop()
    queue = _queues.setdefault(loop, _Queue())
    answer: asyncio.Future[ReceiptResult] = loop.create_future()
    queue.waiting.append(_Waiting(store, raw, rule, answer))
    if queue.writer is None or queue.writer.done():
        # The writer outlives the request that started it: it runs in a copy of that
        # request's context, never inside it.
        queue.writer = loop.create_task(_write_waiting(queue), context=contextvars.copy_context())
    return await asyncio.shield(answer)


async def _write_waiting(queue: _Queue) -> None:
    while queue.waiting:
        rule = queue.waiting[0].rule
        # One receipt id of a store per group: a retry racing its original (or another
        # receipt reusing its id) waits for the next group and is answered against
        # what the first wrote, as if it had come alone after it.
        group: list[_Waiting] = []
        ids: set[tuple[int, str]] = set()
        for w in queue.waiting:
            key = (w.store.id, receipt_id_of(w.raw))
            if w.rule == rule and key not in ids and len(group) < MAX_GROUP:
                group.append(w)
                ids.add(key)
        taken = {id(w) for w in group}
        queue.waiting = [w for w in queue.waiting if id(w) not in taken]
        by_store: dict[int, list[_Waiting]] = {}
        for w in group:
            by_store.setdefault(w.store.id, []).append(w)
        stores = list(by_store.values())
        try:
            answered = await ingest_groups(
                [(ws[0].store, [w.raw for w in ws]) for ws in stores], rule
            )
        except Exception as exc:  # every receipt of the group gets what the write got
            for w in group:
                if not w.answer.done():
                    w.answer.set_exception(exc)
            continue
        for ws, results in zip(stores, answered, strict=True):
            for w, result in zip(ws, results, strict=True):
                if not w.answer.done():
                    w.answer.set_result(result)


async def record_purchase(store: StoreRef, raw: Any, rule: PointsRule) -> tuple[bool, PurchaseOut]:
    """One receipt. Returns (created, answer); a replay gives the first answer."""
    result = await record_single(store, raw, rule)
    if result.status == "rejected":
        errors = result.errors or []
        if errors == [REUSED_RECEIPT]:
            raise Conflict(result.error or "conflict", errors)
        raise InvalidInput(result.error or "invalid receipt", errors)
    assert result.purchase_id is not None
    assert result.points_earned is not None and result.points_balance is not None
    return result.status == "created", PurchaseOut(
        purchase_id=result.purchase_id,
        points_earned=result.points_earned,
        points_balance=result.points_balance,
    )
