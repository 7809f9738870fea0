"""``/hq/v1/imports/{kind}``: a chain's registry, members and purchase history from a
CSV upload (the command line ``tiantian import`` takes files of any size)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, post
from litestar.params import PathParameter

from advisor_api.security import requires_role
from advisor_api.settings import settings_of
from core.errors import Malformed
from members.accounts import Principal
from members.imports import ImportReport, import_upload

ImportKind = Literal["stores", "advisors", "products", "members", "purchases"]


class HqImportsController(Controller):
    path = "/hq/v1"
    tags = ["HQ"]
    guards = [requires_role("hq")]

    @post(
        "/imports/{kind:str}",
        summary="Import stores, advisors, products, members or purchases from CSV",
        description="`text/csv`, UTF-8 (a byte-order mark allowed), a header row naming"
        " the contract's columns (docs/contract.md). Idempotent by natural key: the same"
        " file again changes nothing. A line that cannot be used is reported by line"
        " (the header is line 1) and field; the others are imported. Purchases are"
        " history: no tasks, no pushes, no score facts.",
        opt={"problems": (400, 413, 422), "bodies": {"text/csv": str}},
        status_code=200,
    )
    async def import_csv(
        self,
        request: Request[Principal, Any, Any],
        kind: Annotated[ImportKind, PathParameter()],
    ) -> ImportReport:
        if not request.headers.get("content-type", "").startswith("text/csv"):
            raise Malformed.on("content-type", "send text/csv")
        body = await request.body()
        return await import_upload(kind, body, settings_of(request).points_rule)
