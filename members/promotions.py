"""Points promotions (double-points days): N× points on the lines they match, by SKU,
category, store, region, member tier and date window. A line matching several gets
the best one, never several; the extra is recorded on the line and the ledger row
names the promotion. Idempotent by ``promotion_id``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from audit import trail
from core import clock
from core.db import fetch, in_list, in_write_transaction
from core.errors import Conflict, FieldError, InvalidInput
from core.money import request_hash
from members.policy import PointsRule
from members.queries import unknown_store_codes
from members.receipts import Receipt
from members.schemas import PromotionIn, PromotionOut


@dataclass(frozen=True, slots=True)
class Promotion:
    id: int
    multiplier: int
    starts_on: date
    ends_on: date
    skus: frozenset[str] | None
    categories: frozenset[str] | None
    store_codes: frozenset[str] | None
    region: str | None
    tiers: frozenset[str] | None

    def matches(
        self, day: date, sku: str, category: str, store: tuple[str, str], tier: str | None
    ) -> bool:
        """Whether a line bought on ``day`` at ``store`` (code, region) by a member of
        ``tier`` earns this promotion."""
        return (
            self.starts_on <= day <= self.ends_on
            and (self.skus is None or sku in self.skus)
            and (self.categories is None or category in self.categories)
            and (self.store_codes is None or store[0] in self.store_codes)
            and (self.region is None or store[1] == self.region)
            and (self.tiers is None or (tier is not None and tier in self.tiers))
        )


def best(
    promotions: Sequence[Promotion],
    day: date,
    sku: str,
    category: str,
    store: tuple[str, str],
    tier: str | None,
) -> Promotion | None:
    """The highest multiplier among those that match (the earliest made, on a tie)."""
    found = [p for p in promotions if p.matches(day, sku, category, store, tier)]
    return max(found, key=lambda p: (p.multiplier, -p.id)) if found else None


def _set(raw: Any) -> frozenset[str] | None:
    return None if raw is None else frozenset(json.loads(raw))


async def running(first: date, last: date) -> list[Promotion]:
    """Promotions whose window meets ``first``..``last`` (a batch's days)."""
    rows = await fetch(
        "SELECT id, multiplier, starts_on, ends_on, skus, categories, store_codes, region,"
        " tiers FROM points_promotion WHERE starts_on <= {} AND ends_on >= {}",
        last,
        first,
    )
    return [
        Promotion(
            id=int(r["id"]),
            multiplier=int(r["multiplier"]),
            starts_on=clock.as_date(r["starts_on"]),
            ends_on=clock.as_date(r["ends_on"]),
            skus=_set(r["skus"]),
            categories=_set(r["categories"]),
            store_codes=_set(r["store_codes"]),
            region=r["region"],
            tiers=_set(r["tiers"]),
        )
        for r in rows
    ]


def _json(values: list[str] | None) -> str | None:
    return None if values is None else json.dumps(sorted(set(values)), ensure_ascii=False)


def _out(data: PromotionIn) -> PromotionOut:
    return PromotionOut(
        promotion_id=data.promotion_id,
        name=data.name,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        multiplier=data.multiplier,
        skus=data.skus,
        categories=data.categories,
        store_codes=data.store_codes,
        region=data.region,
        tiers=data.tiers,
    )


async def create_promotion(data: PromotionIn) -> tuple[bool, PromotionOut]:
    """Returns (created, answer); the same id again with the same body is a replay."""
    if data.ends_on < data.starts_on:
        raise InvalidInput.on("ends_on", "is before starts_on")
    missing = await unknown_store_codes(data.store_codes or [])
    if missing:
        raise InvalidInput.on("store_codes", f"no store {', '.join(missing[:10])}")
    # The stored columns, which are also what makes a replay the same request.
    values = (
        data.promotion_id,
        data.name,
        data.starts_on,
        data.ends_on,
        data.multiplier,
        _json(data.skus),
        _json(data.categories),
        _json(data.store_codes),
        data.region,
        _json(data.tiers),
    )
    digest = request_hash(*values)

    async def work() -> bool:
        made = await fetch(
            "INSERT INTO points_promotion (promotion_id, name, starts_on, ends_on, multiplier,"
            " skus, categories, store_codes, region, tiers, request_hash, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})"
            " ON CONFLICT (promotion_id) DO NOTHING RETURNING id",
            *values,
            digest,
            clock.now(),
        )
        if made:
            await trail.record("points_promotion", data.promotion_id, "create", None, data)
            return True
        earlier = await fetch(
            "SELECT request_hash FROM points_promotion WHERE promotion_id = {}", data.promotion_id
        )
        if earlier[0]["request_hash"] != digest:
            raise Conflict(
                f"promotion_id {data.promotion_id} was already used for another promotion",
                [FieldError("promotion_id", "already used for another promotion")],
            )
        return False

    return await in_write_transaction(work), _out(data)


async def list_promotions(on_or_after: date) -> list[PromotionOut]:
    rows = await fetch(
        "SELECT promotion_id, name, starts_on, ends_on, multiplier, skus, categories,"
        " store_codes, region, tiers FROM points_promotion WHERE ends_on >= {}"
        " ORDER BY starts_on, id",
        on_or_after,
    )
    return [
        PromotionOut(
            promotion_id=r["promotion_id"],
            name=r["name"],
            starts_on=clock.as_date(r["starts_on"]),
            ends_on=clock.as_date(r["ends_on"]),
            multiplier=int(r["multiplier"]),
            skus=None if r["skus"] is None else json.loads(r["skus"]),
            categories=None if r["categories"] is None else json.loads(r["categories"]),
            store_codes=None if r["store_codes"] is None else json.loads(r["store_codes"]),
            region=r["region"],
            tiers=None if r["tiers"] is None else json.loads(r["tiers"]),
        )
        for r in rows
    ]


async def _store_regions(store_ids: set[int]) -> dict[int, str]:
    cond, args = in_list(sorted(store_ids), "int")
    rows = await fetch(f"SELECT id, region FROM store WHERE id {cond}", *args)
    return {int(r["id"]): str(r["region"]) for r in rows}


async def extra_points(
    receipts: Sequence[Receipt], tiers: dict[str, str | None], rule: PointsRule
) -> dict[tuple[int, str], list[tuple[int, int | None]]]:
    """Per receipt, each line's extra points and the promotion that gave them
    (``tiers``: each phone's tier when it bought)."""
    found: dict[tuple[int, str], list[tuple[int, int | None]]] = {
        r.key: [(0, None)] * len(r.lines) for r in receipts
    }
    if not receipts:
        return found
    promotions = await running(
        min(r.purchased_on for r in receipts), max(r.purchased_on for r in receipts)
    )
    if not promotions:
        return found
    regions: dict[int, str] = {}
    if any(p.region for p in promotions):
        regions = await _store_regions({r.store.id for r in receipts})
    for r in receipts:
        for i, ((sku, _, fen), product) in enumerate(zip(r.lines, r.products, strict=True)):
            if not product.points_eligible:
                continue
            chosen = best(
                promotions,
                r.purchased_on,
                sku,
                product.category,
                (r.store.code, regions.get(r.store.id, "")),
                tiers.get(r.phone),
            )
            if chosen is not None:
                found[r.key][i] = (rule.points_for(fen) * (chosen.multiplier - 1), chosen.id)
    return found
