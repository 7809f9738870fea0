"""Insights and targets: whether the playbook works and how members are doing, for HQ,
a region (营销通) and an owner, each inside what is theirs; and the month's targets
for new members and points, set by HQ, split by owners, read by everyone."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, put
from litestar.params import Body, QueryParameter

from advisor_api.params import CodePath, MonthPath, PeriodQuery
from advisor_api.security import requires_role
from core import clock
from core.periods import Period, month_or_error, period_or_error
from incentives import targets
from incentives.schemas import SaveReport, SplitIn, TargetsIn, TargetTable
from members.accounts import Principal
from members.queries import visible_store
from members.scopes import scope_for
from tasks.insights import MemberInsights, PlaybookInsights, member_insights, playbook_insights

ScopeQuery = Annotated[
    str | None,
    QueryParameter(
        name="scope",
        min_length=1,
        max_length=60,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="national, region:NAME or store:CODE; by default the caller's own"
        " (the chain for HQ, the region for a regional login, an owner's one store)",
    ),
]
SplitQuery = Annotated[
    Literal["region", "store"] | None,
    QueryParameter(
        description="split one level down: the chain by region or store, a region by store"
    ),
]


def _period(who: Principal, text: str | None) -> Period:
    return period_or_error(text, clock.zone(who.timezone or clock.DEFAULT_TIMEZONE))


class InsightsController(Controller):
    path = "/v1"
    tags = ["Insights and targets"]

    @get(
        "/insights/playbook",
        summary="Tasks by kind and campaign: made, reached, done, converted",
        guards=[requires_role("hq", "region", "owner")],
        opt={"problems": (404, 422)},
    )
    async def playbook(
        self,
        request: Request[Principal, Any, Any],
        scope_text: ScopeQuery = None,
        period: PeriodQuery = None,
    ) -> PlaybookInsights:
        who = request.user
        scope = await scope_for(who, scope_text)
        return await playbook_insights(scope, _period(who, period))

    @get(
        "/insights/members",
        summary="Members, activity, sales, RN3 and stage-up retention, whole or split",
        guards=[requires_role("hq", "region", "owner")],
        opt={"problems": (404, 422)},
    )
    async def members(
        self,
        request: Request[Principal, Any, Any],
        scope_text: ScopeQuery = None,
        period: PeriodQuery = None,
        by: SplitQuery = None,
    ) -> MemberInsights:
        who = request.user
        scope = await scope_for(who, scope_text)
        return await member_insights(scope, _period(who, period), by)

    @get(
        "/targets/{month:str}",
        summary="The month's targets with actual figures and attainment",
        guards=[requires_role("hq", "region", "owner", "advisor")],
        opt={"problems": (404, 422)},
    )
    async def targets(
        self,
        request: Request[Principal, Any, Any],
        month: MonthPath,
        scope_text: ScopeQuery = None,
        subject: Annotated[Literal["store", "advisor"], QueryParameter()] = "store",
    ) -> TargetTable:
        scope = await scope_for(request.user, scope_text)
        return await targets.target_table(scope, month_or_error(month, "month"), subject)


class TargetsController(Controller):
    tags = ["Insights and targets"]

    @put(
        "/hq/v1/targets/{month:str}",
        summary="Set the month's store and advisor targets, as JSON or a CSV upload",
        description="JSON as below, or `text/csv` with the columns subject,code,new_members,"
        "points (UTF-8, a byte-order mark allowed, the header is line 1). A line naming no"
        " known store or advisor, or one that cannot be read, is reported by line and"
        " field; the others are saved. Setting a subject's target again replaces it.",
        guards=[requires_role("hq")],
        opt={
            "problems": (400, 413, 422),
            "bodies": {"application/json": TargetsIn, "text/csv": str},
        },
        status_code=200,
    )
    async def set_targets(
        self, request: Request[Principal, Any, Any], month: MonthPath
    ) -> SaveReport:
        chosen = month_or_error(month, "month")
        body = await request.body()
        lines, rejected = targets.parse_targets(body, request.headers.get("content-type", ""))
        return await targets.save_targets(chosen, lines, rejected, "hq")

    @put(
        "/owner/v1/stores/{store_code:str}/targets/{month:str}",
        summary="Split the store's month target among its advisors",
        guards=[requires_role("owner", "hq")],
        opt={"problems": (404, 422)},
        status_code=200,
    )
    async def split(
        self,
        request: Request[Principal, Any, Any],
        store_code: CodePath,
        month: MonthPath,
        data: Annotated[SplitIn, Body()],
    ) -> TargetTable:
        card = await visible_store(store_code, request.user.visible_stores)
        chosen = month_or_error(month, "month")
        await targets.split_store_target(card["id"], chosen, data.advisors, store_code)
        scope = await scope_for(request.user, f"store:{store_code}")
        return await targets.target_table(scope, chosen, "advisor")
