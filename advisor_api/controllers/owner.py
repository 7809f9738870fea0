"""``/owner/v1``: a store owner watches their stores' work. HQ and the store's
region may look too."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import PathParameter

from advisor_api.params import PeriodQuery
from advisor_api.security import requires_role
from core import clock
from core.periods import month_of, month_or_error, period_or_error
from members.accounts import Principal
from members.queries import visible_store
from members.schemas import StoreSettlement
from members.settlement import store_settlement
from tasks.dashboard import Dashboard, store_dashboard


class OwnerController(Controller):
    path = "/owner/v1"
    tags = ["Owner"]
    guards = [requires_role("owner", "region", "hq")]

    @get(
        "/stores/{store_code:str}/dashboard",
        summary="The store's work over a period",
        opt={
            "problems": (
                404,
                422,
            )
        },
    )
    async def dashboard(
        self,
        request: Request[Principal, Any, Any],
        store_code: Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,16}$")],
        period: PeriodQuery = None,
    ) -> Dashboard:
        who = request.user
        chosen = (
            None if period is None else period_or_error(period, clock.zone(clock.DEFAULT_TIMEZONE))
        )
        return await store_dashboard(store_code, who.visible_stores, chosen)

    @get(
        "/stores/{store_code:str}/settlement",
        summary="The store's points settlement for a month, and its redemptions",
        opt={"problems": (404, 422)},
    )
    async def settlement(
        self,
        request: Request[Principal, Any, Any],
        store_code: Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,16}$")],
        period: PeriodQuery = None,
    ) -> StoreSettlement:
        card = await visible_store(store_code, request.user.visible_stores)
        month = month_of(clock.today(clock.zone(clock.DEFAULT_TIMEZONE))).name
        chosen = month if period is None else month_or_error(period)
        return await store_settlement(int(card["id"]), chosen)
