"""Bulk imports of a chain's registry, members and purchase history from CSV: the
file read as it goes, in chunks of a few thousand lines, each chunk checked line by
line and then written by a fixed number of set-based statements in one transaction.

Idempotent by natural key (store code, advisor code, SKU, phone, store + receipt
id): the same file again changes nothing, and a file cut off halfway, run again
complete, writes what the first run missed. A bad line is reported by its line and
field and never sinks the others. A file that does not end with a line break was
cut off mid-line: its last line (for purchases, its last receipt) is left for the
run of the complete file rather than written half.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from msgspec import Struct

from audit import trail
from core.csvfile import Record, Rejected, read_csv
from members.policy import PointsRule

Kind = Literal["stores", "advisors", "products", "members", "purchases"]
# Lines per chunk (one transaction). Summaries kept by statement triggers (store_day
# counts new members and receipts per store and period) cost per statement, not per
# row: bigger chunks amortise them, up to what one transaction should hold.
CHUNK_LINES = {
    "stores": 5_000,
    "advisors": 5_000,
    "products": 5_000,
    "members": 20_000,
    "purchases": 20_000,
}
CUT_OFF = "the file ends mid-line (cut off?): run it again complete to import this"


class ImportReport(Struct):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = []


@dataclass(slots=True)
class Run:
    """One import: what the chunks need to know and what they have counted."""

    kind: Kind
    rule: PointsRule
    score: bool
    report: ImportReport = field(default_factory=ImportReport)
    history: Any = None  # purchases: the points policies through time (import_history)

    def reject(self, line: int, field_name: str, message: str) -> None:
        self.report.rejected.append(Rejected(line, field_name, message))

    def count(self, created: int = 0, updated: int = 0, unchanged: int = 0) -> None:
        self.report.created += created
        self.report.updated += updated
        self.report.unchanged += unchanged

    async def audit(self, first: int, last: int, counts: tuple[int, int, int]) -> None:
        """One trail row per chunk that changed something, in the chunk's transaction."""
        created, updated, _ = counts
        if created or updated:
            await trail.record(
                "import",
                self.kind,
                "import",
                None,
                {"lines": f"{first}-{last}", "created": created, "updated": updated},
            )


Chunk = Callable[[Run, list[Record]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Columns:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


COLUMNS: dict[str, Columns] = {
    "stores": Columns(("code", "name", "region"), ("timezone", "latitude", "longitude", "o2o")),
    "advisors": Columns(("code", "name", "phone", "store_code"), ("active",)),
    "products": Columns(
        ("sku", "name", "category"), ("stage", "days_of_supply", "points_eligible")
    ),
    "members": Columns(
        ("phone", "store_code"),
        ("name", "advisor_code", "registered_at", "baby_birth_date", "baby_due_date"),
    ),
    "purchases": Columns(
        ("receipt_id", "store_code", "member_phone", "purchased_at", "sku", "quantity", "amount"),
        ("advisor_code",),
    ),
}


def _receipt_key(record: Record) -> tuple[str, str]:
    v = record.values
    return v.get("store_code", "").strip(), v.get("receipt_id", "").strip()


def chunks(kind: str, records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    """Runs of about ``size`` records; a receipt's lines (adjacent in the file) are
    never split between two."""
    chunk: list[Record] = []
    for record in records:
        if len(chunk) >= size and not (
            kind == "purchases" and _receipt_key(chunk[-1]) == _receipt_key(record)
        ):
            yield chunk
            chunk = []
        chunk.append(record)
    if chunk:
        yield chunk


def held_back(kind: str, last: list[Record]) -> list[Record]:
    """What a cut-off file's last chunk must not write: its last line and, for
    purchases, the receipt before it too (the cut line may have been one of its lines,
    its receipt id cut short)."""
    if kind != "purchases" or len(last) < 2:
        return last[-1:]
    key = _receipt_key(last[-2])
    n = 1
    while n < len(last) and _receipt_key(last[-1 - n]) == key:
        n += 1
    return last[-n:]


async def run_import(
    kind: Kind,
    records: Iterator[Record],
    *,
    complete: bool = True,
    rule: PointsRule | None = None,
    score: bool = False,
    progress: Callable[[int], None] | None = None,
    chunk_lines: int | None = None,
) -> ImportReport:
    """Import ``records`` of ``kind``; ``complete``: the file ended with a line break."""
    from members import import_history, import_people, import_registry

    handlers: dict[str, Chunk] = {
        "stores": import_registry.stores,
        "advisors": import_registry.advisors,
        "products": import_registry.products,
        "members": import_people.members,
        "purchases": import_history.purchases,
    }
    run = Run(kind, rule or PointsRule(), score)
    await import_history.prepare(run)
    pending: list[Record] | None = None
    for chunk in chunks(kind, records, chunk_lines or CHUNK_LINES[kind]):
        if pending is not None:
            await handlers[kind](run, pending)
            if progress:
                progress(pending[-1].line)
        pending = chunk
    if pending:
        if not complete:
            cut = held_back(kind, pending)
            pending = pending[: len(pending) - len(cut)]
            for record in cut:
                run.reject(record.line, "line", CUT_OFF)
        if pending:
            await handlers[kind](run, pending)
        if progress:
            progress((pending or cut)[-1].line)
    run.report.rejected.sort(key=lambda r: (r.line, r.field))
    return run.report


async def import_upload(kind: Kind, body: bytes, rule: PointsRule) -> ImportReport:
    """An uploaded file (the API's body or the console's form), read whole: a file
    that does not end with a line break may have been cut off."""
    columns = COLUMNS[kind]
    return await run_import(
        kind,
        read_csv(body, columns.required, columns.optional),
        complete=not body or body.endswith(b"\n"),
        rule=rule,
    )
