"""HQ's registry of stores, advisors and products: upserts by their business code."""

from __future__ import annotations

from typing import Any

from piccolo.columns import Column
from piccolo.table import Table

from audit import trail
from core import clock
from core.db import in_write_transaction
from core.errors import InvalidInput, NotFound
from core.events import bus
from members.contact import hand_members_over
from members.events import AdvisorLeft
from members.phones import phone_or_error
from members.schemas import AdvisorIn, AdvisorOut, ProductIn, ProductOut, StoreIn, StoreOut
from members.tables import Advisor, Product, Store

MAX_PAGE = 500


def _audited(row: dict[str, Any] | None, columns: list[Column]) -> dict[str, Any] | None:
    """The fields HQ sets, as the trail shows them."""
    if row is None:
        return None
    return {c._meta.name: row[c._meta.name] for c in columns}


async def _upsert(
    entity: str, table: type[Table], key: Column, key_value: str, values: dict[Column, Any]
) -> None:
    """Insert or update by business key in one statement, so two concurrent PUTs of a
    new code cannot both insert; the change goes on the trail in the same transaction."""
    fields = list(values)
    after = {c._meta.name: v for c, v in values.items()}
    values = {**values, table.updated_at: clock.now()}  # type: ignore[attr-defined]

    async def work() -> None:
        before = await table.select(*fields).where(key == key_value).first()
        await table.insert(table({**values, key: key_value})).on_conflict(
            target=key, action="DO UPDATE", values=list(values)
        )
        await trail.record(
            entity,
            key_value,
            "create" if before is None else "update",
            _audited(before, fields),
            after,
        )

    await in_write_transaction(work)


def _store_out(row: dict[str, Any]) -> StoreOut:
    return StoreOut(
        code=row["code"],
        name=row["name"],
        region=row["region"],
        timezone=row["timezone"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        o2o=bool(row["o2o"]),
    )


def _advisor_out(row: dict[str, Any]) -> AdvisorOut:
    return AdvisorOut(
        code=row["code"],
        name=row["name"],
        phone=row["phone"],
        store_code=row["store_code"],
        active=bool(row["active"]),
    )


def _product_out(row: dict[str, Any]) -> ProductOut:
    return ProductOut(
        sku=row["sku"],
        name=row["name"],
        category=row["category"],
        stage=row["stage"],
        days_of_supply=row["days_of_supply"],
        points_eligible=bool(row["points_eligible"]),
    )


async def put_store(code: str, data: StoreIn) -> StoreOut:
    if not clock.is_valid_timezone(data.timezone):
        raise InvalidInput.on("timezone", f"unknown time zone {data.timezone!r}")
    values = {
        Store.name: data.name,
        Store.region: data.region,
        Store.timezone: data.timezone,
        Store.latitude: data.latitude,
        Store.longitude: data.longitude,
    }
    if isinstance(data.o2o, bool):
        o2o = values[Store.o2o] = data.o2o
    else:  # left out: as it was
        current = await Store.select(Store.o2o).where(Store.code == code).first()
        o2o = bool(current and current["o2o"])
    if o2o:
        # Orders go to the nearest store: one without a position could never be found.
        for name in ("latitude", "longitude"):
            if getattr(data, name) is None:
                raise InvalidInput.on(name, "is required for a store taking O2O orders")
    await _upsert("store", Store, Store.code, code, values)
    return await get_store(code)


async def get_store(code: str) -> StoreOut:
    row = await Store.select().where(Store.code == code).first()
    if row is None:
        raise NotFound(f"no store {code}")
    return _store_out(row)


async def list_stores(
    region: str | None, limit: int, offset: int, search: str | None = None
) -> list[StoreOut]:
    query = Store.select().order_by(Store.code).limit(min(limit, MAX_PAGE)).offset(offset)
    if region:
        query = query.where(Store.region == region)
    if search:
        like = f"%{search}%"
        query = query.where(Store.code.like(like) | Store.name.like(like))
    return [_store_out(r) for r in await query]


_ADVISOR_COLUMNS = (
    Advisor.code,
    Advisor.name,
    Advisor.phone,
    Advisor.active,
    Advisor.store.code.as_alias("store_code"),
)


_AUDIT_COLUMNS = (*_ADVISOR_COLUMNS, Advisor.id, Advisor.store)


def _advisor_audit(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "name": row["name"],
        "phone": row["phone"],
        "store_code": row["store_code"],
        "active": bool(row["active"]),
    }


async def put_advisor(code: str, data: AdvisorIn) -> AdvisorOut:
    """Create or update an advisor. One who is deactivated, or moves to another store,
    hands their members and open tasks on in the same transaction."""
    phone = phone_or_error(data.phone, "phone")
    store = await Store.select(Store.id).where(Store.code == data.store_code).first()
    if store is None:
        raise InvalidInput.on("store_code", f"no store {data.store_code}")
    values = {
        Advisor.name: data.name,
        Advisor.phone: phone,
        Advisor.store: store["id"],
        Advisor.active: data.active,
        Advisor.updated_at: clock.now(),
    }

    async def work() -> None:
        before = await Advisor.select(*_AUDIT_COLUMNS).where(Advisor.code == code).first()
        await Advisor.insert(Advisor({**values, Advisor.code: code})).on_conflict(
            target=Advisor.code, action="DO UPDATE", values=list(values)
        )
        await trail.record(
            "advisor",
            code,
            "create" if before is None else "update",
            _advisor_audit(before),
            {
                "name": data.name,
                "phone": phone,
                "store_code": data.store_code,
                "active": data.active,
            },
        )
        if (
            before is not None
            and before["active"]
            and (not data.active or before["store"] != store["id"])
        ):
            left = AdvisorLeft(advisor_id=before["id"], store_id=store["id"], active=data.active)
            # Members first: their open tasks then follow them to their new advisor.
            await hand_members_over(left)
            await bus.publish([left])

    await in_write_transaction(work)
    return await get_advisor(code)


async def get_advisor(code: str) -> AdvisorOut:
    row = await Advisor.select(*_ADVISOR_COLUMNS).where(Advisor.code == code).first()
    if row is None:
        raise NotFound(f"no advisor {code}")
    return _advisor_out(row)


async def list_advisors(store_code: str | None, limit: int, offset: int) -> list[AdvisorOut]:
    query = (
        Advisor.select(*_ADVISOR_COLUMNS)
        .order_by(Advisor.code)
        .limit(min(limit, MAX_PAGE))
        .offset(offset)
    )
    if store_code:
        query = query.where(Advisor.store.code == store_code)
    return [_advisor_out(r) for r in await query]


async def put_product(sku: str, data: ProductIn) -> ProductOut:
    if data.category == "formula" and data.stage is None:
        raise InvalidInput.on("stage", "a formula product has a stage (1 to 4)")
    if data.category != "formula" and data.stage is not None:
        raise InvalidInput.on("stage", "only formula products have a stage")
    values = {
        Product.name: data.name,
        Product.category: data.category,
        Product.stage: data.stage,
        Product.days_of_supply: data.days_of_supply,
        Product.points_eligible: data.points_eligible,
    }

    await _upsert("product", Product, Product.sku, sku, values)
    return await get_product(sku)


async def get_product(sku: str) -> ProductOut:
    row = await Product.select().where(Product.sku == sku).first()
    if row is None:
        raise NotFound(f"no product {sku}")
    return _product_out(row)


async def list_products(category: str | None, limit: int, offset: int) -> list[ProductOut]:
    query = Product.select().order_by(Product.sku).limit(min(limit, MAX_PAGE)).offset(offset)
    if category:
        query = query.where(Product.category == category)
    return [_product_out(r) for r in await query]
