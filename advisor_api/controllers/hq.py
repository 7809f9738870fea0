"""``/hq/v1``: the brand's head office keeps the registry."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.params import JSONBody, QueryParameter

from advisor_api.params import CodePath, Filter, Offset, SkuPath
from advisor_api.security import requires_role
from members import registry
from members.schemas import AdvisorIn, AdvisorOut, ProductIn, ProductOut, StoreIn, StoreOut

Limit = Annotated[int, QueryParameter(ge=1, le=registry.MAX_PAGE)]


class HqRegistryController(Controller):
    path = "/hq/v1"
    tags = ["HQ"]
    guards = [requires_role("hq")]

    @put("/stores/{code:str}", summary="Create or update a store", opt={"problems": (422,)})
    async def put_store(self, code: CodePath, data: JSONBody[StoreIn]) -> StoreOut:
        return await registry.put_store(code, data)

    @get("/stores/{code:str}", opt={"problems": (404,)})
    async def get_store(self, code: CodePath) -> StoreOut:
        return await registry.get_store(code)

    @get("/stores")
    async def list_stores(
        self, region: Filter = None, limit: Limit = 100, offset: Offset = 0
    ) -> list[StoreOut]:
        return await registry.list_stores(region, limit, offset)

    @put("/advisors/{code:str}", summary="Create or update an advisor", opt={"problems": (422,)})
    async def put_advisor(self, code: CodePath, data: JSONBody[AdvisorIn]) -> AdvisorOut:
        return await registry.put_advisor(code, data)

    @get("/advisors/{code:str}", opt={"problems": (404,)})
    async def get_advisor(self, code: CodePath) -> AdvisorOut:
        return await registry.get_advisor(code)

    @get("/advisors")
    async def list_advisors(
        self, store_code: Filter = None, limit: Limit = 100, offset: Offset = 0
    ) -> list[AdvisorOut]:
        return await registry.list_advisors(store_code, limit, offset)

    @put("/products/{sku:str}", summary="Create or update a product", opt={"problems": (422,)})
    async def put_product(self, sku: SkuPath, data: JSONBody[ProductIn]) -> ProductOut:
        return await registry.put_product(sku, data)

    @get("/products/{sku:str}", opt={"problems": (404,)})
    async def get_product(self, sku: SkuPath) -> ProductOut:
        return await registry.get_product(sku)

    @get("/products")
    async def list_products(
        self, category: Filter = None, limit: Limit = 100, offset: Offset = 0
    ) -> list[ProductOut]:
        return await registry.list_products(category, limit, offset)
