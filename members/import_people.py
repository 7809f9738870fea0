"""Imports of members with their babies. Rows with the same phone are one member,
each row naming a baby adds one; a member already known keeps their home store and
advisor (the till's history decides those) and takes the file's name when it
gives one. Babies are known by their birth and due dates: the same baby again is
not added twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from core import clock
from core.csvfile import BadValue, Record, each_record
from core.db import fetch, in_list, in_write_transaction, param, rows_source
from core.events import bus
from members.events import MemberImported
from members.imports import Run
from members.phones import normalise_phone
from members.stores import EARLIEST_EVENT


@dataclass(slots=True)
class _Person:
    line: int
    phone: str
    name: str
    store_code: str
    advisor_code: str | None
    registered_at: datetime | None
    babies: set[tuple[date | None, date | None]] = field(default_factory=set)


def _row(record: Record) -> _Person:
    try:
        phone = normalise_phone(record.text("phone", max_length=32))
    except ValueError as exc:
        raise BadValue("phone", str(exc)) from None
    name = record.text("name", required=False, max_length=64)
    if any(ord(c) < 32 for c in name):
        raise BadValue("name", "has control characters")
    person = _Person(
        record.line,
        phone,
        name,
        record.text("store_code", max_length=16),
        record.optional("advisor_code", 16),
        record.instant("registered_at", required=False),
    )
    birth, due = record.day("baby_birth_date"), record.day("baby_due_date")
    if birth or due:
        person.babies.add((birth, due))
    return person


async def _lookups(people: dict[str, _Person]) -> tuple[dict[str, Any], dict[str, Any]]:
    stores_cond, stores_args = in_list(sorted({p.store_code for p in people.values()}), "text")
    stores = {
        r["code"]: r
        for r in await fetch(
            f"SELECT id, code, timezone FROM store WHERE code {stores_cond}", *stores_args
        )
    }
    codes = sorted({p.advisor_code for p in people.values() if p.advisor_code})
    advisors: dict[str, Any] = {}
    if codes:
        cond, args = in_list(codes, "text")
        advisors = {
            r["code"]: r
            for r in await fetch(
                f"SELECT id, code, store, active FROM advisor WHERE code {cond}", *args
            )
        }
    return stores, advisors


def _checked(
    run: Run, people: dict[str, _Person], stores: dict[str, Any], advisors: dict[str, Any]
) -> list[tuple[_Person, Any, Any]]:
    """Each member with their store and advisor; the ones naming unknowns refused."""
    ready = []
    for p in people.values():
        store = stores.get(p.store_code)
        if store is None:
            run.reject(p.line, "store_code", f"no store {p.store_code}")
            continue
        advisor = advisors.get(p.advisor_code) if p.advisor_code else None
        if p.advisor_code and (advisor is None or advisor["store"] != store["id"]):
            run.reject(
                p.line, "advisor_code", f"no advisor {p.advisor_code} at store {p.store_code}"
            )
            continue
        try:
            joined = (
                clock.as_instant(p.registered_at, clock.zone(store["timezone"]))
                if p.registered_at
                else clock.now()
            )
        except ValueError:
            joined = EARLIEST_EVENT - timedelta(days=1)  # refused just below
        if joined > clock.now() or joined < EARLIEST_EVENT:
            run.reject(p.line, "registered_at", "is in the future or before 2000")
            continue
        p.registered_at = joined
        ready.append((p, store, advisor))
    return ready


def _joined(p: _Person) -> datetime:
    assert p.registered_at is not None  # set by _checked
    return p.registered_at


async def members(run: Run, chunk: list[Record]) -> None:
    people: dict[str, _Person] = {}
    for _line, person in each_record(iter(chunk), _row, run.report.rejected):
        first = people.setdefault(person.phone, person)
        if first is not person:
            first.babies |= person.babies
            first.name = first.name or person.name
    if not people:
        return
    stores, advisors = await _lookups(people)
    ready = _checked(run, people, stores, advisors)
    if not ready:
        return
    counts = await in_write_transaction(lambda: _write(run, ready, chunk))
    run.count(*counts)


async def _write(
    run: Run, ready: list[tuple[_Person, Any, Any]], chunk: list[Record]
) -> tuple[int, int, int]:
    source, args = rows_source(
        [
            ("phone", "text"),
            ("name", "text"),
            ("store", "int"),
            ("advisor", "int"),
            ("joined_at", "timestamptz"),
            ("joined_on", "date"),
        ],
        [
            (
                p.phone,
                p.name,
                store["id"],
                advisor["id"] if advisor and advisor["active"] else None,
                p.registered_at,
                clock.local_date(_joined(p), clock.zone(store["timezone"])),
            )
            for p, store, advisor in sorted(ready, key=lambda x: x[0].phone)
        ],
    )
    joined = await fetch(
        "INSERT INTO member (phone, name, home_store, owning_advisor, recruited_by,"
        " joined_at, joined_on, do_not_contact, points_balance, created_at)"
        " SELECT phone, name, store, advisor, advisor, joined_at, joined_on, false, 0,"
        f" {param('timestamptz')} FROM ({source}) AS src WHERE true ORDER BY phone"
        " ON CONFLICT (phone) DO NOTHING RETURNING id, phone, home_store, recruited_by, joined_on",
        clock.now(),
        *args,
    )
    new = {r["phone"] for r in joined}
    renamed = await fetch(
        f"UPDATE member SET name = src.name FROM ({source}) AS src"
        " WHERE member.phone = src.phone AND src.name <> '' AND member.name <> src.name"
        " RETURNING member.phone",
        *args,
    )
    babies = await _add_babies([p for p, _, _ in ready])
    changed = ({r["phone"] for r in renamed} | babies) - new
    if run.score:
        await bus.publish(
            [
                MemberImported(
                    r["id"],
                    r["home_store"],
                    clock.as_date(r["joined_on"]),
                    False,
                    r["recruited_by"],
                )
                for r in joined
            ]
        )
    counts = (len(new), len(changed), len(ready) - len(new) - len(changed))
    await run.audit(chunk[0].line, chunk[-1].line, counts)
    return counts


async def _add_babies(people: list[_Person]) -> set[str]:
    """Babies not yet on record, by (birth date, due date); returns the phones that
    gained one."""
    wanted = [(p.phone, b, d) for p in people for b, d in sorted(p.babies, key=str)]
    if not wanted:
        return set()
    source, args = rows_source(
        [("phone", "text"), ("birth_date", "date"), ("due_date", "date")], wanted
    )
    same = (
        "b.member = m.id AND b.birth_date IS NOT DISTINCT FROM src.birth_date"
        " AND b.due_date IS NOT DISTINCT FROM src.due_date"
    )
    added = await fetch(
        "INSERT INTO baby (member, name, birth_date, due_date, created_at)"
        f" SELECT m.id, '', src.birth_date, src.due_date, {param('timestamptz')}"
        f" FROM ({source}) AS src JOIN member m ON m.phone = src.phone"
        f" WHERE NOT EXISTS (SELECT 1 FROM baby b WHERE {same}) RETURNING member",
        clock.now(),
        *args,
    )
    if not added:
        return set()
    cond, ids_args = in_list(sorted({r["member"] for r in added}), "bigint")
    return {r["phone"] for r in await fetch(f"SELECT phone FROM member WHERE id {cond}", *ids_args)}
