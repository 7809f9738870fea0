"""O2O orders over HTTP: ``/o2o/v1`` for the sales channels (their own key; each sees
only its own orders), the store's side under ``/advisor/v1/orders`` (an advisor sees
and acts on their store's orders only), and HQ's queue and routing figures."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody, QueryParameter

from advisor_api.controllers.pos import provide_points_rule
from advisor_api.params import Offset, OrderIdPath, PeriodQuery
from advisor_api.security import CHANNEL_SECURITY, POS_KEY_HEADER, ChannelKeys, requires_role
from advisor_api.settings import settings_of
from core import clock
from core.periods import period_or_error
from members.accounts import Principal
from members.o2o import store_refs
from members.policy import PointsRule
from members.stores import StoreRef
from orders import queries, services, store_side
from orders.channels import Channel
from orders.schemas import (
    ChannelOrderOut,
    DeliveredIn,
    HqOrdersOut,
    OrderIn,
    OrderPlaced,
    RoutingOut,
    StoreActionOut,
    StoreOrdersOut,
)

StatusQuery = Annotated[
    Literal["routed", "accepted", "delivered", "unrouted"] | None, QueryParameter()
]
StoreStatusQuery = Annotated[Literal["routed", "accepted", "delivered"] | None, QueryParameter()]


async def provide_channel(request: Request[Any, Any, Any]) -> Channel:
    key = request.headers.get(POS_KEY_HEADER)
    if not key:
        raise NotAuthorizedException(f"send the sales channel's key in {POS_KEY_HEADER}")
    keys: ChannelKeys = request.app.state.channel_keys
    channel = await keys.channel_for(key)
    request.scope.setdefault("state", {})["role"] = "channel"  # for the access log
    return channel


class ChannelOrdersController(Controller):
    path = "/o2o/v1"
    tags = ["O2O"]
    security = CHANNEL_SECURITY
    dependencies = {"channel": Provide(provide_channel)}

    @post(
        "/orders",
        status_code=201,
        summary="Place an online order: routed to the member's store or the nearest",
        opt={"replay": OrderPlaced, "problems": (409, 422)},
    )
    async def place(
        self,
        request: Request[Any, Any, Any],
        channel: NamedDependency[Channel],
        data: JSONBody[OrderIn],
    ) -> Response[OrderPlaced]:
        created, answer = await services.place_order(
            channel.id, data, settings_of(request).o2o_limits
        )
        return Response(answer, status_code=201 if created else 200)

    @get(
        "/orders/{order_id:str}",
        summary="An order's status and every step of it",
        opt={"problems": (404,)},
    )
    async def order(
        self, channel: NamedDependency[Channel], order_id: OrderIdPath
    ) -> ChannelOrderOut:
        return await queries.channel_order(channel.id, order_id)


async def _advisor_store(request: Request[Principal, Any, Any]) -> tuple[int, StoreRef]:
    who = request.user
    assert who.advisor_id is not None and len(who.store_ids) == 1
    (store_id,) = who.store_ids
    return who.advisor_id, (await store_refs([store_id]))[store_id][0]


class AdvisorOrdersController(Controller):
    path = "/advisor/v1/orders"
    tags = ["Advisor"]
    guards = [requires_role("advisor")]
    dependencies = {"rule": Provide(provide_points_rule, sync_to_thread=False)}

    @get(summary="Your store's O2O orders, those waiting first")
    async def list_orders(
        self, request: Request[Principal, Any, Any], status: StoreStatusQuery = None
    ) -> StoreOrdersOut:
        _, store = await _advisor_store(request)
        minutes = settings_of(request).o2o_accept_minutes
        return StoreOrdersOut(minutes, await queries.store_orders(store.id, status, minutes))

    @post(
        "/{order_id:str}/accept",
        status_code=200,
        summary="Take the order (of two advisors at once, one wins; the other gets 409)",
        opt={"problems": (404, 409)},
    )
    async def accept(
        self, request: Request[Principal, Any, Any], order_id: OrderIdPath
    ) -> StoreActionOut:
        advisor_id, store = await _advisor_store(request)
        return await store_side.accept(store, advisor_id, order_id)

    @post(
        "/{order_id:str}/decline",
        status_code=200,
        summary="The store cannot deliver it: it moves to the next nearest store",
        opt={"problems": (404, 409)},
    )
    async def decline(
        self, request: Request[Principal, Any, Any], order_id: OrderIdPath
    ) -> StoreActionOut:
        advisor_id, store = await _advisor_store(request)
        limits = settings_of(request).o2o_limits
        return await store_side.decline(store, advisor_id, order_id, limits)

    @post(
        "/{order_id:str}/delivered",
        status_code=201,
        summary="Delivered: the order becomes the store's purchase under the till's receipt",
        opt={"replay": StoreActionOut, "problems": (404, 409, 422)},
    )
    async def delivered(
        self,
        request: Request[Principal, Any, Any],
        rule: NamedDependency[PointsRule],
        order_id: OrderIdPath,
        data: JSONBody[DeliveredIn],
    ) -> Response[StoreActionOut]:
        advisor_id, store = await _advisor_store(request)
        created, answer = await store_side.delivered(store, advisor_id, order_id, data, rule)
        return Response(answer, status_code=201 if created else 200)


class HqO2oController(Controller):
    path = "/hq/v1/o2o"
    tags = ["HQ"]
    guards = [requires_role("hq")]

    @get("/orders", summary="Orders chain-wide; status=unrouted is what no store took")
    async def orders(
        self,
        status: StatusQuery = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> HqOrdersOut:
        return HqOrdersOut(await queries.hq_orders(status, limit, offset))

    @get(
        "/routing",
        summary="Per region: orders, share home store / nearest / unrouted, median minutes",
        opt={"problems": (422,)},
    )
    async def routing(self, period: PeriodQuery = None) -> RoutingOut:
        tz = clock.zone(clock.DEFAULT_TIMEZONE)
        return await queries.routing_figures(period_or_error(period, tz), tz)
