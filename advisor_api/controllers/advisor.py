"""``/advisor/v1``: an advisor's own day. Only their own tasks, only their store's members."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import QueryParameter

from advisor_api.security import requires_role
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
        day: Annotated[date | None, QueryParameter(query="date")] = None,
    ) -> TodayOut:
        advisor_id = me(request).advisor_id
        assert advisor_id is not None  # an advisor login always names its advisor
        return await queries.advisor_today(advisor_id, day)
