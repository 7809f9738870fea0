"""The members domain's read side: what other domains and the pages may ask of it.

Python callers get functions. Set-based statements elsewhere (the daily run, league
tables, the list) join the relations published here instead of naming members'
tables: each is a subquery with the columns this domain commits to, which both
databases inline into the caller's plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import msgspec

from core import clock
from core.db import fetch, in_list, is_postgres
from core.errors import NotFound
from core.periods import add_months
from members.babies import baby_out
from members.schemas import (
    BabyOut,
    ExpiringPoints,
)
from members.tables import Baby

# --- published relations ------------------------------------------------------

# Every member with what the playbook needs: their home store and its zone and
# region, whether they may be contacted, their latest purchase and formula stage,
# and ``owner``: the owning advisor if still active at the home store, else NULL.
MEMBERS = (
    "(SELECT m.id, m.name, m.phone, m.home_store, s.code AS store_code, s.region,"
    " s.timezone, m.do_not_contact, m.points_balance, m.joined_on, m.recruited_by,"
    " m.last_purchased_at, m.last_purchase_on, m.last_formula_stage, m.tier, m.tier_year,"
    " CASE WHEN a.active AND a.store = m.home_store THEN a.id END AS owner"
    " FROM member m JOIN store s ON s.id = m.home_store"
    " LEFT JOIN advisor a ON a.id = m.owning_advisor)"
)
# The points policy in force, one row: ``value_per_100_fen``, ``expiry_months``,
# ``expiry_warning_days``, ``tiers`` (``members.policy.policy_of_row`` reads it).
POLICY = (
    "(SELECT value_per_100_fen, expiry_months, expiry_warning_days, tiers"
    " FROM points_policy ORDER BY id DESC LIMIT 1)"
)
# Babies with their member's id: joined to MEMBERS by ``member``.
BABIES = "(SELECT b.id, b.member, b.name, b.birth_date, b.due_date FROM baby b)"
# Every advisor with the store they work at now.
ADVISORS = (
    "(SELECT a.id, a.code, a.name, a.active, a.store, s.code AS store_code,"
    " s.name AS store_name, s.region, s.timezone FROM advisor a JOIN store s ON s.id = a.store)"
)
STORES = "(SELECT s.id, s.code, s.name, s.region, s.timezone FROM store s)"
# Each store's active advisors (``store``, ``n``): stores without any are absent.
STAFF = "(SELECT store, COUNT(*) AS n FROM advisor WHERE active GROUP BY store)"
# Lots of points with some left: joined to MEMBERS by ``member``.
LOTS = (
    "(SELECT l.id, l.member, l.expires_on, l.earned - l.used - l.expired AS points"
    " FROM points_lot l WHERE l.earned > l.used + l.expired)"
)
# Purchases as the insights and dashboards read them (amounts in fen).
PURCHASES = (
    "(SELECT p.id, p.store, p.member, p.advisor, p.purchased_at, p.purchased_on,"
    " p.total_fen, p.points_earned FROM purchase p)"
)


def babies_json(member: str) -> str:
    """The babies of the member whose id is the SQL expression ``member``, as one
    JSON array column (``id``, ``name``, ``birth_date``, ``due_date``), so a list of
    members stays one query. ``babies_from_json`` reads it back."""
    if is_postgres():
        return (
            "(SELECT json_agg(json_build_object('id', b.id, 'name', b.name, 'birth_date',"
            f" b.birth_date, 'due_date', b.due_date) ORDER BY b.id) FROM baby b"
            f" WHERE b.member = {member})"
        )
    return (
        "(SELECT json_group_array(json_object('id', b.id, 'name', b.name, 'birth_date',"
        " b.birth_date, 'due_date', b.due_date)) FROM (SELECT * FROM baby"
        f" WHERE member = {member} ORDER BY id) b)"
    )


def expiring_json(member: str, warning_days: str) -> str:
    """The lots of the member whose id is the SQL expression ``member`` with points
    left that lapse within ``warning_days`` (an SQL expression) of a day, soonest
    first, as one JSON array column of ``[points, expires_on]``; ``expiring_from_json``
    reads it back. Two placeholders, both the day."""
    if is_postgres():
        return (
            "(SELECT json_agg(json_build_array(l.points, l.expires_on)"
            f" ORDER BY l.expires_on, l.id) FROM {LOTS} l WHERE l.member = {member}"
            " AND l.expires_on >= CAST({} AS DATE)"
            f" AND l.expires_on <= CAST({{}} AS DATE) + {warning_days})"
        )
    return (
        "(SELECT json_group_array(json_array(l.points, l.expires_on)) FROM (SELECT * FROM"
        f" {LOTS} l WHERE l.member = {member} AND l.expires_on >= {{}}"
        f" AND l.expires_on <= date({{}}, '+' || ({warning_days}) || ' days')"
        " ORDER BY l.expires_on, l.id) l)"
    )


def expiring_from_json(raw: str | None) -> list[ExpiringPoints]:
    return [
        ExpiringPoints(int(points), date.fromisoformat(expires_on))
        for points, expires_on in msgspec.json.decode(raw or "[]")
    ]


def babies_from_json(raw: str | None, day: date) -> list[BabyOut]:
    return [
        baby_out(
            b["id"],
            b["name"],
            date.fromisoformat(b["birth_date"]) if b["birth_date"] else None,
            date.fromisoformat(b["due_date"]) if b["due_date"] else None,
            day,
        )
        for b in msgspec.json.decode(raw or "[]")
    ]


# --- stores and zones ------------------------------------------------------------


async def timezones_in_use() -> list[str]:
    """The time zones that have stores: each has its own midnight and 08:30."""
    return [r["timezone"] for r in await fetch("SELECT DISTINCT timezone FROM store")]


async def store_todays(store_ids: Iterable[int]) -> dict[int, date]:
    """Each store's own today."""
    cond, args = in_list(sorted(set(store_ids)), "int")
    rows = await fetch(f"SELECT id, timezone FROM store WHERE id {cond}", *args)
    return {r["id"]: clock.today(clock.zone(r["timezone"])) for r in rows}


async def store_ids_in_zone(timezone: str) -> list[int]:
    return [r["id"] for r in await fetch("SELECT id FROM store WHERE timezone = {}", timezone)]


async def unknown_store_codes(codes: Sequence[str]) -> list[str]:
    if not codes:
        return []
    cond, args = in_list(list(codes), "text")
    known = {r["code"] for r in await fetch(f"SELECT code FROM store WHERE code {cond}", *args)}
    return sorted(set(codes) - known)


async def store_card(code: str) -> dict[str, Any] | None:
    """id, code, name, region and time zone of a store, by code."""
    rows = await fetch("SELECT id, code, name, region, timezone FROM store WHERE code = {}", code)
    return rows[0] if rows else None


async def store_cards(ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    cond, args = in_list(sorted(set(ids)), "int")
    rows = await fetch(
        f"SELECT id, code AS store_code, name AS store_name, region FROM store WHERE id {cond}",
        *args,
    )
    return {int(row["id"]): row for row in rows}


async def first_store_code() -> str | None:
    rows = await fetch("SELECT code FROM store ORDER BY code LIMIT 1")
    return rows[0]["code"] if rows else None


async def regions_of(store_ids: Iterable[int]) -> frozenset[str]:
    ids = sorted(set(store_ids))
    if not ids:
        return frozenset()
    cond, args = in_list(ids, "int")
    rows = await fetch(f"SELECT DISTINCT region FROM store WHERE id {cond}", *args)
    return frozenset(row["region"] for row in rows)


async def stores_by_members(region: str | None, store_id: int | None) -> list[tuple[int, str]]:
    """The stores of a scope (a region, one store, or all) with their code, the
    largest membership first (ties in registration order): how PK contests pair
    similar stores."""
    where, args = "", list[Any]()
    if region is not None:
        where, args = " WHERE s.region = {}", [region]
    elif store_id is not None:
        where, args = " WHERE s.id = {}", [store_id]
    rows = await fetch(
        "SELECT s.id, s.code, COALESCE(m.n, 0) AS n FROM store s LEFT JOIN"
        " (SELECT home_store, COUNT(*) AS n FROM member GROUP BY home_store) m"
        f" ON m.home_store = s.id{where} ORDER BY n DESC, s.id",
        *args,
    )
    return [(int(r["id"]), r["code"]) for r in rows]


async def store_ids_by_code(codes: Sequence[str]) -> dict[str, int]:
    if not codes:
        return {}
    cond, args = in_list(sorted(set(codes)), "text")
    rows = await fetch(f"SELECT id, code FROM store WHERE code {cond}", *args)
    return {r["code"]: int(r["id"]) for r in rows}


# --- advisors --------------------------------------------------------------------


async def advisor_cards(ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """code, name, active, store (id, code, name), region and zone of advisors."""
    if not ids:
        return {}
    cond, args = in_list(sorted(set(ids)), "int")
    rows = await fetch(
        "SELECT a.id, a.code, a.name, a.active, a.store AS store_id, s.code AS store_code,"
        " s.name AS store_name, s.region, s.timezone FROM advisor a"
        f" JOIN store s ON s.id = a.store WHERE a.id {cond}",
        *args,
    )
    return {int(row["id"]): row for row in rows}


async def advisor_id_by_code(code: str) -> int | None:
    rows = await fetch("SELECT id FROM advisor WHERE code = {}", code)
    return int(rows[0]["id"]) if rows else None


async def advisor_ids_by_code(codes: Sequence[str]) -> dict[str, tuple[int, int]]:
    """code -> (advisor id, the store they work at)."""
    if not codes:
        return {}
    cond, args = in_list(sorted(set(codes)), "text")
    rows = await fetch(f"SELECT id, code, store FROM advisor WHERE code {cond}", *args)
    return {r["code"]: (int(r["id"]), int(r["store"])) for r in rows}


async def advisor_codes_by_id(advisor_ids: Sequence[int]) -> dict[int, str]:
    if not advisor_ids:
        return {}
    cond, args = in_list(sorted(set(advisor_ids)), "int")
    rows = await fetch(f"SELECT id, code FROM advisor WHERE id {cond}", *args)
    return {int(r["id"]): r["code"] for r in rows}


async def advisor_ids_of_store(store_id: int) -> list[int]:
    rows = await fetch("SELECT id FROM advisor WHERE store = {} ORDER BY code", store_id)
    return [int(r["id"]) for r in rows]


async def all_advisor_ids() -> list[int]:
    return [int(r["id"]) for r in await fetch("SELECT id FROM advisor ORDER BY id")]


async def advisor_zones(advisor_ids: Sequence[int]) -> dict[int, str]:
    """The time zone each advisor's store keeps."""
    if not advisor_ids:
        return {}
    cond, args = in_list(sorted(set(advisor_ids)), "int")
    rows = await fetch(
        f"SELECT a.id, s.timezone FROM advisor a JOIN store s ON s.id = a.store WHERE a.id {cond}",
        *args,
    )
    return {int(r["id"]): r["timezone"] for r in rows}


# --- members ---------------------------------------------------------------------


async def babies_of_members(member_ids: Sequence[int], today: date) -> dict[int, list[BabyOut]]:
    """Babies of many members at once, with their age in months and formula stage."""
    if not member_ids:
        return {}
    rows = await Baby.select().where(Baby.member.is_in(list(member_ids))).order_by(Baby.id)
    out: dict[int, list[BabyOut]] = defaultdict(list)
    for b in rows:
        out[b["member"]].append(baby_out(b["id"], b["name"], b["birth_date"], b["due_date"], today))
    return out


async def category_history(member_ids: list[int]) -> dict[tuple[int, str, date], tuple[int, int]]:
    """Per member, category and day: units bought and the label's total days of
    supply, for categories whose products have one (the run-out estimate's input)."""
    cond, args = in_list(member_ids, "bigint")
    rows = await fetch(
        "SELECT p.member, pr.category, p.purchased_on, SUM(l.quantity) AS units,"
        " SUM(l.quantity * pr.days_of_supply) AS label_days"
        " FROM purchase p JOIN purchase_line l ON l.purchase = p.id"
        " JOIN product pr ON pr.id = l.product"
        f" WHERE p.member {cond} AND pr.days_of_supply IS NOT NULL"
        " GROUP BY p.member, pr.category, p.purchased_on",
        *args,
    )
    return {
        (r["member"], r["category"], clock.as_date(r["purchased_on"])): (
            int(r["units"]),
            int(r["label_days"]),
        )
        for r in rows
    }


async def purchases_between(
    member_id: int, start: datetime, end: datetime
) -> list[tuple[int, int]]:
    """(id, total in fen) of the member's purchases in [start, end), oldest first."""
    rows = await fetch(
        "SELECT id, total_fen FROM purchase WHERE member = {}"
        " AND purchased_at >= {} AND purchased_at < {} ORDER BY purchased_at, id",
        member_id,
        start,
        end,
    )
    return [(int(r["id"]), int(r["total_fen"])) for r in rows]


async def is_demo_chain(hq_phone: str) -> bool:
    """Whether the demo chain's HQ login exists (the sign-in page then lists logins)."""
    return bool(await fetch("SELECT 1 FROM user_account WHERE phone = {}", hq_phone))


def segment_conditions(segment: dict[str, Any], day: date, m: str = "m") -> tuple[str, list[Any]]:
    """SQL conditions (each starting `` AND``) and their arguments that keep the rows
    of ``MEMBERS`` aliased ``m`` inside a campaign's segment on ``day``: a region,
    stores, babies aged within months, the category of the latest purchase."""
    filters: list[str] = []
    args: list[Any] = []
    if segment.get("region"):
        filters.append(f"{m}.region = {{}}")
        args.append(segment["region"])
    if segment.get("store_codes"):
        cond, more = in_list(segment["store_codes"], "text")
        filters.append(f"{m}.store_code {cond}")
        args += more
    ages = segment.get("baby_age_months")
    if ages:
        youngest, oldest = ages
        # Aged youngest..oldest whole months on the day: born after the day `oldest+1`
        # months back and no later than `youngest` months back.
        filters.append(
            f"EXISTS (SELECT 1 FROM baby b WHERE b.member = {m}.id"
            " AND b.birth_date > {} AND b.birth_date <= {})"
        )
        args += [add_months(day, -(oldest + 1)), add_months(day, -youngest)]
    if segment.get("last_purchase_category"):
        filters.append(
            "EXISTS (SELECT 1 FROM purchase p JOIN purchase_line l ON l.purchase = p.id"
            f" JOIN product pr ON pr.id = l.product WHERE p.member = {m}.id"
            f" AND p.purchased_at = {m}.last_purchased_at AND pr.category = {{}})"
        )
        args.append(segment["last_purchase_category"])
    return "".join(f" AND {f}" for f in filters), args


async def visible_store(code: str, allowed: frozenset[int] | None) -> dict[str, Any]:
    """A store by code, if the caller may see it (``allowed``: their stores; None:
    every store). Another's store is not found, as an unknown code is."""
    card = await store_card(code)
    if card is None or (allowed is not None and card["id"] not in allowed):
        raise NotFound(f"no store {code} of yours")
    return card
