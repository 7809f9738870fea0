"""Points as money (冲积波) for HQ: the policy (what points are worth, how long they
live, the tiers), double-points promotions, and the monthly settlement of what the
brand owes each store for the points redeemed there."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post, put
from litestar.params import JSONBody

from advisor_api.params import MonthQuery
from advisor_api.security import requires_role
from core import clock
from core.periods import month_or_error
from members import policy, promotions, settlement
from members.accounts import Principal
from members.schemas import PointsPolicyIO, PromotionIn, PromotionOut, Settlement


def csv_or_json(
    request: Request[Any, Any, Any], found: Any, csv: bytes, name: str
) -> Response[Any]:
    """JSON, or CSV for Excel when the caller's Accept prefers it."""
    if request.accept.best_match(["application/json", "text/csv"]) == "text/csv":
        return Response(
            csv,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(found, media_type=MediaType.JSON)


class HqPointsController(Controller):
    path = "/hq/v1"
    tags = ["HQ"]
    guards = [requires_role("hq")]

    @get("/points-policy", summary="The points policy in force")
    async def get_policy(self) -> PointsPolicyIO:
        return (await policy.load_policy()).shown()

    @put(
        "/points-policy",
        summary="A new points policy, from the next booking on",
        opt={"problems": (422,)},
    )
    async def put_policy(self, data: JSONBody[PointsPolicyIO]) -> PointsPolicyIO:
        return (await policy.set_policy(policy.checked(data))).shown()

    @post(
        "/points-promotions",
        status_code=201,
        summary="A points promotion (N× points on matching lines)",
        opt={"replay": PromotionOut, "problems": (409, 422)},
    )
    async def create_promotion(self, data: JSONBody[PromotionIn]) -> Response[PromotionOut]:
        created, answer = await promotions.create_promotion(data)
        return Response(answer, status_code=201 if created else 200)

    @get("/points-promotions", summary="Promotions running now or later")
    async def list_promotions(self) -> list[PromotionOut]:
        return await promotions.list_promotions(clock.today(clock.zone(clock.DEFAULT_TIMEZONE)))

    @get(
        "/settlements",
        summary="What the brand owes each store for a month: JSON, or CSV with Accept: text/csv",
        opt={"problems": (422,), "csv": True},
    )
    async def settlements(
        self, request: Request[Principal, Any, Any], period: MonthQuery
    ) -> Response[Settlement]:
        found = await settlement.settlement(month_or_error(period))
        return csv_or_json(
            request, found, settlement.settlement_csv(found), f"settlement-{found.period}"
        )
