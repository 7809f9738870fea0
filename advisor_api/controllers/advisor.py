"""``/advisor/v1``: an advisor's own day. Only their own tasks, only their store's members."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from litestar.params import QueryParameter

from advisor_api.security import requires_role
from advisor_api.today_cache import TodayCache
from members import clock
from members.accounts import Principal
from tasks import queries
from tasks.schemas import TodayOut


def me(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


class AdvisorController(Controller):
    path = "/advisor/v1"
    tags = ["Advisor"]
    guards = [requires_role("advisor")]

    @get("/today", summary="Today's follow-ups, one card per member, most urgent first")
    async def today(
        self,
        request: Request[Principal, Any, Any],
        day: Annotated[date | None, QueryParameter(name="date")] = None,
    ) -> Response[TodayOut]:
        who = me(request)
        # An advisor login always names an active advisor and so a store.
        advisor_id, timezone = who.advisor_id, who.timezone
        assert advisor_id is not None and timezone is not None
        on = day or clock.today(clock.zone(timezone))

        async def compute() -> bytes:
            return msgspec.json.encode(await queries.advisor_today(advisor_id, timezone, on))

        cache: TodayCache = request.app.state.today_cache
        body = await cache.get(advisor_id, on, compute)
        return cast("Response[TodayOut]", Response(body, media_type=MediaType.JSON))
