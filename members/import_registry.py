"""Imports of the registry: stores, advisors, products. Each chunk is compared with
what is stored (one read), and only new or changed rows are written (one upsert),
each change on the audit trail (one insert), all in one transaction."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from audit import trail
from core import clock
from core.csvfile import BadValue, Record, each_record
from core.db import fetch, in_list, in_write_transaction, param, rows_source
from core.events import bus
from members.contact import hand_members_over
from members.events import AdvisorLeft
from members.imports import Run
from members.phones import phone_or_error

CODE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
SKU = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
CATEGORY = re.compile(r"^[a-z][a-z_]*$")


def _printable(record: Record, name: str, max_length: int, required: bool = True) -> str:
    value = record.text(name, required=required, max_length=max_length)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadValue(name, "has control characters")
    return value


def _code(record: Record, name: str, pattern: re.Pattern[str] = CODE) -> str:
    value = record.text(name, max_length=32)
    if not pattern.match(value):
        raise BadValue(name, "letters, digits, - and _ only (at most 16)")
    return value


def _store(record: Record) -> tuple[str, dict[str, Any]]:
    timezone = record.optional("timezone", 64) or clock.DEFAULT_TIMEZONE
    if not clock.is_valid_timezone(timezone):
        raise BadValue("timezone", f"unknown time zone {timezone!r}")
    values = {
        "name": _printable(record, "name", 100),
        "region": _printable(record, "region", 50),
        "timezone": timezone,
        "latitude": record.number("latitude", -90, 90),
        "longitude": record.number("longitude", -180, 180),
        # Left empty (or no such column): the store keeps what it had, as a PUT that
        # leaves o2o out does; settled against the stored row by _o2o_settled.
        "o2o": record.boolean("o2o", True) if record.optional("o2o", 8) else None,
    }
    if values["o2o"]:
        _o2o_has_position(values)
    return _code(record, "code"), values


def _o2o_has_position(values: dict[str, Any]) -> None:
    """The API's rule: orders go to the nearest store, so one taking them has a position."""
    for name in ("latitude", "longitude"):
        if values[name] is None:
            raise BadValue(name, "is required for a store taking O2O orders")


def _o2o_settled(stored: dict[str, Any] | None, values: dict[str, Any]) -> dict[str, Any]:
    """A line's store with a left-out o2o filled from the stored row (a new one: off)."""
    if values["o2o"] is not None:
        return values
    settled = {**values, "o2o": bool(stored and stored["o2o"])}
    if settled["o2o"]:
        _o2o_has_position(settled)
    return settled


def _advisor(record: Record) -> tuple[str, dict[str, Any]]:
    try:
        phone = phone_or_error(record.text("phone", max_length=32), "phone")
    except Exception as exc:  # the phone's own message, as a field error
        raise BadValue("phone", getattr(exc, "detail", "is not a mobile number")) from None
    return _code(record, "code"), {
        "name": _printable(record, "name", 64),
        "phone": phone,
        "store_code": _code(record, "store_code"),
        "active": record.boolean("active", True),
    }


def _product(record: Record) -> tuple[str, dict[str, Any]]:
    category = record.text("category", max_length=32)
    if not CATEGORY.match(category):
        raise BadValue("category", "lower-case letters and _ only")
    stage = record.whole("stage", minimum=1, maximum=4) if record.optional("stage") else None
    if category == "formula" and stage is None:
        raise BadValue("stage", "a formula product has a stage (1 to 4)")
    if category != "formula" and stage is not None:
        raise BadValue("stage", "only formula products have a stage")
    days = (
        record.whole("days_of_supply", minimum=1, maximum=366)
        if record.optional("days_of_supply")
        else None
    )
    return _code(record, "sku", SKU), {
        "name": _printable(record, "name", 100),
        "category": category,
        "stage": stage,
        "days_of_supply": days,
        "points_eligible": record.boolean("points_eligible", True),
    }


def _once(
    run: Run, found: list[tuple[int, tuple[str, dict[str, Any]]]], key: str
) -> dict[str, Any]:
    """Each key once per chunk (a later line naming it again is refused)."""
    seen: dict[str, int] = {}
    rows: dict[str, Any] = {}
    for line, (code, values) in found:
        if code in seen:
            run.reject(line, key, f"{code} is already on line {seen[code]}")
            continue
        seen[code] = line
        rows[code] = (line, values)
    return rows


async def _stored(table: str, key: str, columns: Sequence[str], codes: list[str]) -> dict[str, Any]:
    cond, args = in_list(codes, "text")
    rows = await fetch(f"SELECT {key}, {', '.join(columns)} FROM {table} WHERE {key} {cond}", *args)
    return {r[key]: {c: r[c] for c in columns} for r in rows}


def _same(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return all(
        (bool(before[k]) if isinstance(after[k], bool) else before[k]) == after[k] for k in after
    )


async def _upsert_chunk(
    run: Run,
    chunk: list[Record],
    read: Callable[[Record], tuple[str, dict[str, Any]]],
    spec: tuple[str, str, str, list[tuple[str, str]]],
    after_write: Callable[[list[tuple[str, Any, Any]]], Any] | None = None,
    settle: Callable[[dict[str, Any] | None, dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Read, compare, write what changed, audit it: the registry kinds' one shape.
    ``settle``: a line's values against the stored row (what the line left out), or
    BadValue to refuse the line; it runs in the transaction, on a fresh copy each try."""
    table, key, entity, columns = spec
    rows = _once(run, each_record(iter(chunk), read, run.report.rejected), key)
    if not rows:
        return
    names = [name for name, _ in columns]
    refused: list[tuple[int, BadValue]] = []

    async def work() -> tuple[int, int, int]:
        stored = await _stored(table, key, names, sorted(rows))
        wanted: dict[str, dict[str, Any]] = {}
        refused.clear()
        for code, (line, values) in sorted(rows.items()):
            try:
                wanted[code] = settle(stored.get(code), values) if settle else values
            except BadValue as exc:
                refused.append((line, exc))
        changes = [
            (code, stored.get(code), values)
            for code, values in wanted.items()
            if code not in stored or not _same(stored[code], values)
        ]
        if changes:
            source, args = rows_source(
                [(key, "text"), *columns],
                [(code, *(after[n] for n in names)) for code, _, after in changes],
            )
            updates = ", ".join(f"{n} = excluded.{n}" for n in names)
            await fetch(
                f"INSERT INTO {table} ({key}, {', '.join(names)}, updated_at)"
                f" SELECT {key}, {', '.join(names)}, {param('timestamptz')} FROM ({source}) AS src"
                f" WHERE true ON CONFLICT ({key}) DO UPDATE SET {updates},"
                " updated_at = excluded.updated_at",
                clock.now(),
                *args,
            )
            await trail.record_many(
                entity,
                [(c, "update" if b else "create", b, a) for c, b, a in changes],
            )
            if after_write is not None:
                await after_write(changes)
        created = sum(1 for _, before, _ in changes if before is None)
        counts = (created, len(changes) - created, len(wanted) - len(changes))
        await run.audit(chunk[0].line, chunk[-1].line, counts)
        return counts

    created, updated, unchanged = await in_write_transaction(work)
    for line, exc in refused:
        run.reject(line, exc.field, exc.message)
    run.count(created, updated, unchanged)


async def stores(run: Run, chunk: list[Record]) -> None:
    columns = [
        ("name", "text"),
        ("region", "text"),
        ("timezone", "text"),
        ("latitude", "float8"),
        ("longitude", "float8"),
        ("o2o", "bool"),
    ]
    spec = ("store", "code", "store", columns)
    await _upsert_chunk(run, chunk, _store, spec, settle=_o2o_settled)


async def products(run: Run, chunk: list[Record]) -> None:
    columns = [
        ("name", "text"),
        ("category", "text"),
        ("stage", "int"),
        ("days_of_supply", "int"),
        ("points_eligible", "bool"),
    ]
    await _upsert_chunk(run, chunk, _product, ("product", "sku", "product", columns))


async def advisors(run: Run, chunk: list[Record]) -> None:
    """Advisors name their store by code; one who is deactivated or moves hands their
    members and open tasks on, as an HQ edit does."""
    found = each_record(iter(chunk), _advisor, run.report.rejected)
    codes = sorted({values["store_code"] for _, (_, values) in found})
    cond, args = in_list(codes, "text")
    store_ids = {
        r["code"]: r["id"]
        for r in await fetch(f"SELECT id, code FROM store WHERE code {cond}", *args)
    }
    known = []
    for line, (code, values) in found:
        if values["store_code"] not in store_ids:
            run.reject(line, "store_code", f"no store {values['store_code']}")
            continue
        known.append((line, (code, {**values, "store": store_ids[values["store_code"]]})))
    if not known:
        return
    lines = {line for line, _ in known}
    kept = [r for r in chunk if r.line in lines]
    by_line = dict(known)

    async def left(changes: list[tuple[str, Any, Any]]) -> None:
        gone = [
            (code, after)
            for code, before, after in changes
            if before is not None
            and before["active"]
            and (not after["active"] or before["store"] != after["store"])
        ]
        if not gone:
            return
        cond, args = in_list([code for code, _ in gone], "text")
        ids = {
            r["code"]: r["id"]
            for r in await fetch(f"SELECT id, code FROM advisor WHERE code {cond}", *args)
        }
        events = [AdvisorLeft(ids[code], after["store"], after["active"]) for code, after in gone]
        for event in events:  # one per advisor who left, never per member
            await hand_members_over(event)
        await bus.publish(events)

    columns = [
        ("name", "text"),
        ("phone", "text"),
        ("store", "int"),
        ("active", "bool"),
    ]
    await _upsert_chunk(
        run,
        kept,
        lambda record: (
            by_line[record.line][0],
            {k: v for k, v in by_line[record.line][1].items() if k != "store_code"},
        ),
        ("advisor", "code", "advisor", columns),
        left,
    )
