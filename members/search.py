"""Finding a member who walks in or calls back: by the last four digits of the phone,
the whole phone, or the start of the name, among the members of the caller's stores.
Each is a range of an index on (home store, …), so a search costs the same in a
store of the national chain as in the demo's (see the migration that made them)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from core import clock
from core.db import fetch, in_list, is_postgres
from core.errors import InvalidInput
from members.phones import InvalidPhone, normalise_phone
from members.queries import babies_from_json, babies_json
from members.schemas import MemberHit, MemberSearchOut
from members.tiers import effective_tier

TAIL_DIGITS = 4
_PHONE_LIKE = re.compile(r"[+0-9\s\-().]+")
# Past every character a name can hold: names starting with ``q`` sort from ``q`` up
# to ``q`` followed by this, byte-wise.
_LAST_CHAR = "\U0010ffff"

By = Literal["phone_tail", "phone", "name"]


def read_query(q: str) -> tuple[By, str]:
    """How a search is meant: four digits are the phone's tail, a whole mobile (as
    people type it) the phone, anything else the start of a name."""
    text = unicodedata.normalize("NFKC", q).strip()
    if not text:
        raise InvalidInput.on("q", "type the last 4 digits of the phone, or a name")
    if not _PHONE_LIKE.fullmatch(text):
        return "name", text
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) == TAIL_DIGITS:
        return "phone_tail", digits
    try:
        return "phone", normalise_phone(text)
    except InvalidPhone:
        raise InvalidInput.on(
            "q", "give the last 4 digits of the phone, the whole phone, or a name"
        ) from None


def _condition(by: By, value: str) -> tuple[str, list[Any], str]:
    """The search's condition, its arguments and its order."""
    if by == "phone_tail":
        # The index's own expression, word for word.
        return "substr(m.phone, 8, 4) = {}", [value], "m.name, m.id"
    if by == "phone":
        return "m.phone = {}", [value], "m.id"
    name = 'm.name COLLATE "C"' if is_postgres() else "m.name"
    return f"{name} >= {{}} AND {name} < {{}}", [value, value + _LAST_CHAR], f"{name}, m.id"


async def search_members(
    store_ids: frozenset[int], q: str, limit: int, offset: int
) -> MemberSearchOut:
    """Members of ``store_ids`` (their home store) matching ``q``, a page at a time;
    a member of any other store never appears."""
    by, value = read_query(q)
    where, args, order = _condition(by, value)
    stores, store_args = in_list(sorted(store_ids), "int")
    rows = await fetch(
        "SELECT m.id, m.name, m.phone, m.points_balance, m.tier, m.tier_year,"
        f" m.last_purchase_on, m.do_not_contact, s.timezone, {babies_json('m.id')} AS babies"
        f" FROM member m JOIN store s ON s.id = m.home_store WHERE m.home_store {stores}"
        f" AND {where} ORDER BY {order} LIMIT {{}} OFFSET {{}}",
        *store_args,
        *args,
        limit + 1,
        offset,
    )
    hits = []
    for r in rows[:limit]:
        today = clock.today(clock.zone(r["timezone"]))
        hits.append(
            MemberHit(
                member_id=r["id"],
                name=r["name"],
                phone=r["phone"],
                babies=babies_from_json(r["babies"], today),
                points_balance=r["points_balance"],
                tier=effective_tier(r["tier"], r["tier_year"], today),
                last_purchase_on=None
                if r["last_purchase_on"] is None
                else clock.as_date(r["last_purchase_on"]),
                do_not_contact=bool(r["do_not_contact"]),
            )
        )
    return MemberSearchOut(
        q=q, by=by, offset=offset, limit=limit, members=hits, more=len(rows) > limit
    )
