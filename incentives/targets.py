"""Monthly targets for new members and points (把新客户、积分等指标落实到每个店内顾问):
HQ sets them per store (and, if it wants, per advisor), as JSON or a CSV upload; an
owner splits their store's among its advisors; an advisor without one of their own
gets the store's target ÷ the store's active advisors, rounded up. Actual figures
are the month's score-ledger totals, so a target and a league table never disagree.
Attainment = actual ÷ target to four places, None without a target."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from audit import trail
from core.csvfile import BadValue, Record, Rejected, each_record, read_csv
from core.db import fetch, in_list, in_write_transaction, rows_source
from core.errors import InvalidInput, Malformed, msgspec_field_error
from core.jsonbody import decode_as_schema_reads
from core.money import share
from incentives.schemas import (
    AdvisorShareIn,
    Attainment,
    Figures,
    MyTarget,
    SaveReport,
    TargetIn,
    TargetRow,
    TargetsIn,
    TargetTable,
)
from members.insights import grouped, key_column
from members.queries import (
    ADVISORS,
    STORES,
    advisor_codes_by_id,
    advisor_ids_by_code,
    advisor_ids_of_store,
    store_ids_by_code,
)
from members.scopes import Scope, store_filter

MAX_LINES = 100_000
CSV_COLUMNS = ("subject", "code", "new_members", "points")


# --- setting -------------------------------------------------------------------


def parse_targets(
    body: bytes, content_type: str
) -> tuple[list[tuple[int, TargetIn]], list[Rejected]]:
    """The lines of a JSON or CSV upload, each with its number (a JSON item's place
    in the list from 1, a CSV record's line with the header as line 1)."""
    if content_type.startswith("text/csv"):
        rejected: list[Rejected] = []
        found = each_record(read_csv(body, CSV_COLUMNS), _csv_target, rejected)
        if len(found) + len(rejected) > MAX_LINES:
            raise InvalidInput.on("body", f"at most {MAX_LINES} lines at a time")
        return found, rejected
    if not content_type.startswith("application/json"):
        raise Malformed.on("content-type", "send application/json or text/csv")
    try:
        data = decode_as_schema_reads(body, TargetsIn)
    except msgspec.ValidationError as exc:
        error = msgspec_field_error(exc)
        raise Malformed(f"{error.field}: {error.message}", [error]) from None
    except msgspec.DecodeError:
        raise Malformed.on("body", "is not valid JSON") from None
    return list(enumerate(data.targets, start=1)), []


def _csv_target(record: Record) -> TargetIn:
    subject = record.text("subject").lower()
    if subject not in ("store", "advisor"):
        raise BadValue("subject", "give store or advisor")
    try:
        return msgspec.convert(
            {
                "subject": subject,
                "code": record.text("code", max_length=16),
                "new_members": record.whole("new_members", maximum=1_000_000),
                "points": record.whole("points", maximum=10**12),
            },
            TargetIn,
        )
    except msgspec.ValidationError as exc:
        raise BadValue("code", "letters, digits, - and _ only") from exc


async def save_targets(
    month: str, lines: list[tuple[int, TargetIn]], rejected: list[Rejected], set_by: str
) -> SaveReport:
    """Every line that names a known store or advisor once; the rest reported."""
    stores = await store_ids_by_code([t.code for _, t in lines if t.subject == "store"])
    advisors = await advisor_ids_by_code([t.code for _, t in lines if t.subject == "advisor"])
    seen: dict[tuple[str, str], int] = {}
    rows = []
    codes: dict[tuple[str, int], str] = {}
    for line, target in lines:
        known = stores.get(target.code) if target.subject == "store" else advisors.get(target.code)
        if known is None:
            rejected.append(Rejected(line, "code", f"no {target.subject} {target.code}"))
            continue
        earlier = seen.setdefault((target.subject, target.code), line)
        if earlier != line:
            rejected.append(Rejected(line, "code", f"{target.code} is already on line {earlier}"))
            continue
        subject_id = known if isinstance(known, int) else known[0]
        codes[(target.subject, subject_id)] = target.code
        rows.append((target.subject, subject_id, target.new_members, target.points))

    async def work() -> None:
        await _audit(month, month, rows, codes)
        await _upsert(month, rows, set_by)

    await in_write_transaction(work)
    return SaveReport(month, len(rows), sorted(rejected, key=lambda r: r.line))


async def _audit(
    month: str,
    key: str,
    rows: Sequence[tuple[str, int, int, int]],
    codes: dict[tuple[str, int], str],
    replaced: Sequence[int] = (),
) -> None:
    """One trail row for a save: the targets it touches as they were and as they are
    (``replaced``: advisors whose targets the save removes when it leaves them out)."""
    if not rows and not replaced:
        return
    ids, args = in_list(sorted({r[1] for r in rows} | set(replaced)), "int")
    found = await fetch(
        f"SELECT subject, subject_id, new_members, points FROM target"
        f" WHERE month = {{}} AND subject_id {ids}",
        month,
        *args,
    )
    wanted = set(codes)
    before = {
        f"{r['subject']}:{codes[(r['subject'], r['subject_id'])]}": [r["new_members"], r["points"]]
        for r in found
        if (r["subject"], r["subject_id"]) in wanted
    }
    after = {f"{s}:{codes[(s, i)]}": [n, p] for s, i, n, p in rows}
    await trail.record("targets", key, "update" if before else "create", before, after)


async def _upsert(month: str, rows: Sequence[tuple[str, int, int, int]], set_by: str) -> None:
    if not rows:
        return
    source, args = rows_source(
        [("subject", "text"), ("subject_id", "int"), ("new_members", "int"), ("points", "bigint")],
        rows,
    )
    await fetch(
        "INSERT INTO target (month, subject, subject_id, new_members, points, set_by,"
        " updated_at) SELECT {}, r.subject, r.subject_id, r.new_members, r.points, {}, {}"
        f" FROM ({source}) AS r WHERE true ON CONFLICT (month, subject, subject_id) DO UPDATE"
        " SET new_members = excluded.new_members, points = excluded.points,"
        " set_by = excluded.set_by, updated_at = excluded.updated_at",
        month,
        set_by,
        datetime.now(UTC),
        *args,
    )


async def split_store_target(
    store_id: int, month: str, shares: Sequence[AdvisorShareIn], store_code: str = ""
) -> None:
    """The owner's split of the store's month: it replaces the store's advisor targets
    (an advisor left out falls back to the store's share)."""
    found = await advisor_ids_by_code([s.code for s in shares])
    rows, seen = [], set()
    codes: dict[tuple[str, int], str] = {}
    for i, part in enumerate(shares):
        advisor = found.get(part.code)
        if advisor is None or advisor[1] != store_id:
            raise InvalidInput.on(f"advisors[{i}].code", f"no advisor {part.code} in this store")
        if part.code in seen:
            raise InvalidInput.on(f"advisors[{i}].code", f"{part.code} is given twice")
        seen.add(part.code)
        codes[("advisor", advisor[0])] = part.code
        rows.append(("advisor", advisor[0], part.new_members, part.points))

    async def replace() -> None:
        staff_ids = await advisor_ids_of_store(store_id)
        for advisor_id, code in (await advisor_codes_by_id(staff_ids)).items():
            codes.setdefault(("advisor", advisor_id), code)
        await _audit(month, f"{month}:{store_code}", rows, codes, staff_ids)
        staff, staff_args = in_list(staff_ids, "int")
        await fetch(
            f"DELETE FROM target WHERE month = {{}} AND subject = 'advisor' AND subject_id {staff}",
            month,
            *staff_args,
        )
        await _upsert(month, rows, "owner")

    await in_write_transaction(replace)


# --- reading -------------------------------------------------------------------


def _row(subject: str, r: dict[str, Any], target: Figures | None, derived: bool) -> TargetRow:
    actual = Figures(int(r["actual_new_members"] or 0), int(r["actual_points"] or 0))
    return TargetRow(
        subject=subject,
        code=str(r["code"]),
        name=str(r["name"]),
        store_code=str(r["store_code"]),
        target=target,
        actual=actual,
        attainment=Attainment(
            share(actual.new_members, target.new_members) if target else None,
            share(actual.points, target.points) if target else None,
        ),
        derived=derived,
    )


def _own(r: dict[str, Any], prefix: str = "") -> Figures | None:
    if r[f"{prefix}new_members"] is None:
        return None
    return Figures(int(r[f"{prefix}new_members"]), int(r[f"{prefix}points"]))


async def store_targets(scope: Scope, month: str) -> list[TargetRow]:
    where, args = store_filter(scope, "s.id")
    rows = await fetch(
        "SELECT s.code, s.name, s.code AS store_code, t.new_members, t.points,"
        " c.new_members AS actual_new_members, c.points AS actual_points"
        f" FROM {STORES} s LEFT JOIN target t ON t.month = {{}} AND t.subject = 'store'"
        " AND t.subject_id = s.id LEFT JOIN store_score c ON c.period = {} AND c.store = s.id"
        f" WHERE true{where} ORDER BY s.code",
        month,
        month,
        *args,
    )
    return [_row("store", r, _own(r), False) for r in rows]


def _derived(r: dict[str, Any]) -> Figures | None:
    """The store's target ÷ its active advisors, rounded up: an advisor's share."""
    store, n = _own(r, "store_"), int(r["store_advisors"] or 0)
    if store is None or not r["active"] or n == 0:
        return None
    return Figures(-(-store.new_members // n), -(-store.points // n))


async def advisor_targets(
    scope: Scope, month: str, advisor_ids: Sequence[int] = ()
) -> list[TargetRow]:
    """Active advisors in the scope (and anyone with a target or a score this month)."""
    where, args = store_filter(scope, "a.store")
    only, only_args = "", list[Any]()
    if advisor_ids:
        cond, only_args = in_list(list(advisor_ids), "int")
        only = f" AND a.id {cond}"
    rows = await fetch(
        "SELECT a.code, a.name, a.store_code, a.active, t.new_members, t.points,"
        " st.new_members AS store_new_members, st.points AS store_points, n.store_advisors,"
        " c.new_members AS actual_new_members, c.points AS actual_points"
        f" FROM {ADVISORS} a"
        " LEFT JOIN target t ON t.month = {} AND t.subject = 'advisor' AND t.subject_id = a.id"
        " LEFT JOIN target st ON st.month = {} AND st.subject = 'store' AND st.subject_id = a.store"
        f" LEFT JOIN (SELECT x.store, COUNT(*) AS store_advisors FROM {ADVISORS} x"
        " WHERE x.active GROUP BY x.store) n ON n.store = a.store"
        " LEFT JOIN advisor_score c ON c.period = {} AND c.advisor = a.id"
        f" WHERE (a.active OR t.id IS NOT NULL OR c.id IS NOT NULL){where}{only}"
        " ORDER BY a.store_code, a.code",
        month,
        month,
        month,
        *args,
        *only_args,
    )
    lines = []
    for r in rows:
        own = _own(r)
        lines.append(
            _row("advisor", r, own or _derived(r), own is None and _derived(r) is not None)
        )
    return lines


async def target_table(scope: Scope, month: str, subject: str) -> TargetTable:
    rows = await (store_targets if subject == "store" else advisor_targets)(scope, month)
    return TargetTable(month=month, scope=scope.text, subject=subject, rows=rows)


async def my_target(advisor_id: int, month: str) -> tuple[MyTarget | None, Attainment | None]:
    """An advisor's target for ``month`` (their own or their share of the store's), with
    the month's actual figures and attainment; (None, None) without one."""
    rows = await advisor_targets(Scope("national", "national"), month, [advisor_id])
    if not rows or rows[0].target is None:
        return None, None
    row, target = rows[0], rows[0].target
    return (
        MyTarget(month, target.new_members, target.points, row.derived, row.actual),
        row.attainment,
    )


async def target_totals(scope: Scope, month: str, by: str | None) -> list[TargetRow]:
    """The month's store targets and actual figures summed by region or by store (or
    the whole scope as one line, keyed ""), in one grouped statement whatever the
    chain's size. A line's target is its stores' targets summed and its actual those
    same stores' figures, so a store without a target neither helps nor hurts; a line
    with no target at all shows every store's actual figures and no attainment."""
    where, args = store_filter(scope, "s.id")
    aimed = "CASE WHEN t.id IS NULL THEN 0 ELSE c.{0} END"
    rows = await fetch(
        f"SELECT {key_column(by)} AS code, MIN(s.name) AS name, COUNT(t.id) AS with_target,"
        " SUM(t.new_members) AS new_members, SUM(t.points) AS points,"
        f" SUM({aimed.format('new_members')}) AS aimed_new_members,"
        f" SUM({aimed.format('points')}) AS aimed_points,"
        " SUM(c.new_members) AS all_new_members, SUM(c.points) AS all_points"
        f" FROM {STORES} s LEFT JOIN target t ON t.month = {{}} AND t.subject = 'store'"
        " AND t.subject_id = s.id LEFT JOIN store_score c ON c.period = {} AND c.store = s.id"
        f" WHERE true{where}{grouped(by)} ORDER BY 1",
        month,
        month,
        *args,
    )
    lines = []
    for r in rows:
        has_target = int(r["with_target"] or 0) > 0
        actual = "aimed_" if has_target else "all_"
        line = {
            "code": str(r["code"]),
            "name": str(r["name"]) if by == "store" else str(r["code"]),
            "store_code": str(r["code"]) if by == "store" else "",
            "actual_new_members": r[f"{actual}new_members"],
            "actual_points": r[f"{actual}points"],
        }
        lines.append(_row(by or scope.kind, line, _own(r) if has_target else None, False))
    return lines
