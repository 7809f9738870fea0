"""``/pos/v1``: what a store's till sends. A key belongs to one store and writes
only for it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody, PathParameter

from advisor_api.security import POS_KEY_HEADER, POS_SECURITY, PosKeys
from advisor_api.settings import settings_of
from members import points, registration, returns, tills, views
from members.policy import PointsRule
from members.schemas import (
    MemberRegistered,
    MemberRegistration,
    PosMemberOut,
    PurchaseBatchIn,
    PurchaseBatchOut,
    PurchaseIn,
    PurchaseOut,
    RedemptionIn,
    RedemptionOut,
    ReturnIn,
    ReturnOut,
)
from members.stores import StoreRef


async def provide_pos_store(request: Request[Any, Any, Any]) -> StoreRef:
    key = request.headers.get(POS_KEY_HEADER)
    if not key:
        raise NotAuthorizedException(f"send the store's POS key in {POS_KEY_HEADER}")
    pos_keys: PosKeys = request.app.state.pos_keys
    store = await pos_keys.store_for(key)
    request.scope.setdefault("state", {})["role"] = "pos"  # for the access log
    return store


def provide_points_rule(request: Request[Any, Any, Any]) -> PointsRule:
    return settings_of(request).points_rule


def _status(created: bool) -> int:
    return 201 if created else 200


class PosController(Controller):
    path = "/pos/v1"
    tags = ["POS"]
    security = POS_SECURITY
    dependencies = {
        "store": Provide(provide_pos_store),
        "rule": Provide(provide_points_rule, sync_to_thread=False),
    }

    @post(
        "/members",
        status_code=201,
        summary="Register a member (a known phone returns them)",
        opt={"replay": MemberRegistered, "problems": (422,)},
    )
    async def register_member(
        self, store: NamedDependency[StoreRef], data: JSONBody[MemberRegistration]
    ) -> Response[MemberRegistered]:
        answer = await registration.register_member(store, data)
        return Response(answer, status_code=_status(answer.created))

    @get(
        "/members/{phone:str}",
        summary="Look a member up by phone at the till",
        opt={
            "problems": (
                404,
                422,
            )
        },
    )
    async def member(
        self, store: NamedDependency[StoreRef], phone: Annotated[str, PathParameter(max_length=32)]
    ) -> PosMemberOut:
        return await views.member_for_till(phone)

    @post(
        "/purchases",
        status_code=201,
        summary="Record one receipt",
        opt={
            "replay": PurchaseOut,
            "problems": (
                409,
                422,
            ),
        },
    )
    async def purchase(
        self,
        store: NamedDependency[StoreRef],
        rule: NamedDependency[PointsRule],
        data: JSONBody[PurchaseIn],
    ) -> Response[PurchaseOut]:
        created, answer = await tills.record_purchase(store, data, rule)
        return Response(answer, status_code=_status(created))

    @post("/purchases/batch", status_code=200, summary="Record up to 500 receipts")
    async def purchase_batch(
        self,
        store: NamedDependency[StoreRef],
        rule: NamedDependency[PointsRule],
        data: JSONBody[PurchaseBatchIn],
    ) -> PurchaseBatchOut:
        return PurchaseBatchOut(results=await tills.ingest_purchases(store, data.purchases, rule))

    @post(
        "/redemptions",
        status_code=201,
        summary="Spend a member's points",
        opt={
            "replay": RedemptionOut,
            "problems": (
                409,
                422,
            ),
        },
    )
    async def redeem(
        self, store: NamedDependency[StoreRef], data: JSONBody[RedemptionIn]
    ) -> Response[RedemptionOut]:
        created, answer = await points.redeem_points(store, data)
        return Response(answer, status_code=_status(created))

    @post(
        "/returns",
        status_code=201,
        summary="Goods brought back: the receipt's points and score taken back",
        opt={"replay": ReturnOut, "problems": (409, 422)},
    )
    async def return_goods(
        self, store: NamedDependency[StoreRef], data: JSONBody[ReturnIn]
    ) -> Response[ReturnOut]:
        created, answer = await returns.record_return(store, data)
        return Response(answer, status_code=_status(created))
