"""Scopes as the API writes them (``national``, ``region:华南``, ``store:S0001``): the
stores a league table, an insight or a target covers, and whether a person may look
at them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import Forbidden, InvalidInput, NotFound
from members.accounts import Principal
from members.queries import STORES, store_card, store_cards


@dataclass(frozen=True, slots=True)
class Scope:
    text: str
    kind: str  # national | region | store
    region: str | None = None
    store_id: int | None = None
    store_region: str | None = None  # a store scope's store's region


async def parse_scope(text: str, field_name: str = "scope") -> Scope:
    if text == "national":
        return Scope(text, "national")
    kind, _, value = text.partition(":")
    if kind == "region" and value:
        return Scope(text, "region", region=value)
    if kind == "store" and value:
        card = await store_card(value)
        if card is None:
            raise InvalidInput.on(field_name, f"no store {value}")
        return Scope(text, "store", store_id=card["id"], store_region=card["region"])
    raise InvalidInput.on(field_name, "give national, region:NAME or store:CODE")


def store_filter(scope: Scope, column: str) -> tuple[str, list[Any]]:
    """A condition (starting `` AND``) keeping rows whose store id ``column`` is in scope."""
    if scope.kind == "store":
        return f" AND {column} = {{}}", [scope.store_id]
    if scope.kind == "region":
        return f" AND {column} IN (SELECT r.id FROM {STORES} r WHERE r.region = {{}})", [
            scope.region
        ]
    return "", []


def check_may_see(who: Principal, scope: Scope) -> None:
    """HQ sees every scope; a regional marketer their region and its stores; an owner
    their stores; an advisor their own store. Another's store is not found."""
    if who.role == "hq":
        return
    if who.role == "region":
        if scope.kind == "national":
            raise Forbidden(f"a regional login sees region:{who.region} and its stores only")
        inside = scope.region if scope.kind == "region" else scope.store_region
        if inside != who.region:
            if scope.kind == "store":
                raise NotFound(f"no store in region {who.region} named by {scope.text}")
            raise Forbidden(f"a regional login sees region:{who.region} only")
        return
    if scope.kind != "store":
        raise Forbidden("this login sees its own stores only: give store:CODE")
    if scope.store_id not in who.store_ids:
        raise NotFound(f"no store of yours named by {scope.text}")


async def scope_for(who: Principal, text: str | None, field_name: str = "scope") -> Scope:
    """The scope asked for, checked against who asks; without one, the caller's own:
    the chain for HQ, the region for a regional login, the store of someone with one."""
    if text is None:
        if who.role == "hq":
            text = "national"
        elif who.role == "region":
            text = f"region:{who.region}"
        elif len(who.store_ids) == 1:
            (store_id,) = who.store_ids
            text = f"store:{(await store_cards([store_id]))[store_id]['store_code']}"
        else:
            raise InvalidInput.on(field_name, "give store:CODE, one of your stores")
    scope = await parse_scope(text, field_name)
    check_may_see(who, scope)
    return scope
