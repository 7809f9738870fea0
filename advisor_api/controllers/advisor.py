"""``/advisor/v1``: an advisor's own day. Only their own tasks, only their store's members."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from advisor_api.params import PRINTABLE, Id, PeriodQuery
from advisor_api.security import requires_role
from advisor_api.today_cache import TodayCache
from core import clock
from core.errors import InvalidInput
from core.periods import period_or_error
from incentives import boards
from incentives.schemas import MyScore
from members.accounts import Principal
from members.schemas import MemberSearchOut
from members.search import search_members
from notifications import services as pushes
from notifications.schemas import DeviceIn, DeviceOut
from tasks import outcomes, queries
from tasks.schemas import (
    MemberView,
    OutcomeIn,
    OutcomeOut,
    SnoozeIn,
    SnoozeOut,
    SyncOut,
    TodayOut,
)


def me(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


MAX_DAYS_AWAY = 366
# Ids travel as 64-bit integers: a larger number in a path can name nothing.


class AdvisorController(Controller):
    path = "/advisor/v1"
    tags = ["Advisor"]
    guards = [requires_role("advisor")]

    @get(
        "/today",
        summary="Today's follow-ups, one card per member, most urgent first",
        opt={"problems": (422,)},
    )
    async def today(
        self,
        request: Request[Principal, Any, Any],
        day: Annotated[date | None, QueryParameter(name="date")] = None,
    ) -> Response[TodayOut]:
        advisor_id, timezone = _advisor(request)
        today = clock.today(clock.zone(timezone))
        on = day or today
        if abs((on - today).days) > MAX_DAYS_AWAY:
            raise InvalidInput.on("date", f"within {MAX_DAYS_AWAY} days of today")

        async def compute() -> bytes:
            return msgspec.json.encode(await queries.advisor_today(advisor_id, timezone, on))

        if on != today:  # other days are looked at rarely: not worth memory
            body = await compute()
        else:
            cache: TodayCache = request.app.state.today_cache
            body = await cache.get(advisor_id, on, compute)
        return cast("Response[TodayOut]", Response(body, media_type=MediaType.JSON))

    @get(
        "/tasks",
        summary="Changes since a cursor, for a phone that was offline",
        opt={"problems": (422,)},
    )
    async def tasks(
        self,
        request: Request[Principal, Any, Any],
        since: Annotated[str | None, QueryParameter(max_length=64)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=2000)] = queries.SYNC_PAGE,
    ) -> SyncOut:
        advisor_id, _ = _advisor(request)
        try:
            return await queries.advisor_changes(advisor_id, since, limit)
        except queries.BadCursor as exc:
            raise InvalidInput.on("since", str(exc)) from None

    @get(
        "/members",
        summary="Find a member of your store by the phone's last 4 digits, the phone or a name",
        opt={"problems": (422,)},
    )
    async def search(
        self,
        request: Request[Principal, Any, Any],
        q: Annotated[
            str,
            QueryParameter(
                min_length=1,
                max_length=50,
                pattern=PRINTABLE,
                description="4 digits: the phone's tail; a whole mobile: the phone;"
                " anything else: the start of the name",
            ),
        ],
        offset: Annotated[int, QueryParameter(ge=0, le=10_000)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=50)] = 20,
    ) -> MemberSearchOut:
        return await search_members(me(request).store_ids, q, limit, offset)

    @get(
        "/members/{member_id:int}",
        summary="A member of your store at a glance",
        opt={"problems": (404,)},
    )
    async def member(
        self,
        request: Request[Principal, Any, Any],
        member_id: Id,
        purchases_offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
        purchases_limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> MemberView:
        return await queries.member_view(
            me(request).store_ids, member_id, purchases_offset, purchases_limit
        )

    @post(
        "/tasks/{task_id:int}/outcome",
        status_code=201,
        summary="Record what happened on a call",
        opt={
            "replay": OutcomeOut,
            "problems": (
                404,
                409,
                422,
            ),
        },
    )
    async def outcome(
        self, request: Request[Principal, Any, Any], task_id: Id, data: JSONBody[OutcomeIn]
    ) -> Response[OutcomeOut]:
        advisor_id, timezone = _advisor(request)
        created, answer = await outcomes.record_outcome(advisor_id, timezone, task_id, data)
        return Response(answer, status_code=201 if created else 200)

    @post(
        "/tasks/{task_id:int}/snooze",
        status_code=200,
        summary="Move a task's due date",
        opt={
            "problems": (
                404,
                409,
                422,
            )
        },
    )
    async def snooze(
        self, request: Request[Principal, Any, Any], task_id: Id, data: JSONBody[SnoozeIn]
    ) -> SnoozeOut:
        advisor_id, timezone = _advisor(request)
        return await outcomes.snooze(advisor_id, timezone, task_id, data.until)

    @post(
        "/devices",
        status_code=201,
        summary="Register this phone for pushes",
        opt={"problems": (422,)},
    )
    async def add_device(
        self, request: Request[Principal, Any, Any], data: JSONBody[DeviceIn]
    ) -> DeviceOut:
        advisor_id, _ = _advisor(request)
        return DeviceOut(**await pushes.register_device(advisor_id, data.token, data.platform))

    @delete("/devices/{token:str}", status_code=204, summary="Stop pushes to this phone")
    async def remove_device(
        self,
        request: Request[Principal, Any, Any],
        # Any token without "/": removing one never registered is harmless (204).
        token: Annotated[str, PathParameter(min_length=1, max_length=1024, pattern=r"^[^/]+$")],
    ) -> None:
        advisor_id, _ = _advisor(request)
        await pushes.remove_device(advisor_id, token)

    @get(
        "/me/score",
        summary="Your figures, bonus estimate and ranks for a period",
        opt={"problems": (422,)},
    )
    async def my_score(
        self,
        request: Request[Principal, Any, Any],
        period: PeriodQuery = None,
    ) -> MyScore:
        advisor_id, timezone = _advisor(request)
        return await boards.my_score(advisor_id, period_or_error(period, clock.zone(timezone)))


def _advisor(request: Request[Principal, Any, Any]) -> tuple[int, str]:
    who = me(request)
    # An advisor login always names an active advisor and so a store.
    assert who.advisor_id is not None and who.timezone is not None
    return who.advisor_id, who.timezone
