"""O2O orders on the advisor's phone: an order's delivery card in 紧急 shows the order
(items, total, address, its wait against the accept limit) and the store's buttons,
接单 / 拒单 while it waits and 已送达 (with the till's receipt id) once accepted,
through the same services as ``/advisor/v1/orders``. The page's script posts them and
redraws the card; without a script each is a plain form back to the list. They are
never queued offline: of two advisors at once, the server decides who wins."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from msgspec import Struct

from advisor_api.params import OrderIdPath
from advisor_api.settings import settings_of
from advisor_api.web.common import page_user
from core.errors import Conflict, InvalidInput, NotFound, msgspec_field_error
from members.accounts import Principal
from members.o2o import advisor_code, store_refs
from members.policy import PointsRule
from members.stores import StoreRef
from orders import queries, store_side
from orders.schemas import DeliveredIn, StoreActionOut, StoreOrderOut
from tasks import deliveries

# What a plain form post (no script) comes back to the list saying.
NOTICES = {
    "taken": "已被同事接单",
    "gone": "这一单已不在本店(已转给别的门店)",
    "late": "这一单已处理过",
    "receipt": "小票号不对或已用过,请核对后再点已送达",
}


class ReceiptForm(Struct):
    receipt_id: str = ""


async def order_cards(
    who: Principal, task_ids: list[int], accept_minutes: int
) -> tuple[dict[int, StoreOrderOut], str]:
    """The orders behind the O2O delivery tasks among ``task_ids`` (by task), and the
    advisor's code (the card says 我 for their own accept)."""
    behind = await deliveries.orders_of_tasks(task_ids)
    if not behind:
        return {}, ""
    (store_id,) = who.store_ids
    found = await queries.store_orders_by_pk(store_id, sorted(set(behind.values())), accept_minutes)
    assert who.advisor_id is not None
    mine = await advisor_code(who.advisor_id)
    return {task: found[pk] for task, pk in behind.items() if pk in found}, mine


def notice_of(notice: str | None, order_id: str | None) -> str | None:
    if notice not in NOTICES:
        return None
    return f"订单 {(order_id or '')[:64]}:{NOTICES[notice]}"


async def _store(request: Request[Any, Any, Any]) -> tuple[int, StoreRef]:
    who = await page_user(request, "advisor")
    assert who.advisor_id is not None and len(who.store_ids) == 1
    (store_id,) = who.store_ids
    return who.advisor_id, (await store_refs([store_id]))[store_id][0]


async def _answer(
    request: Request[Any, Any, Any],
    order_id: str,
    action: str,
    work: Awaitable[tuple[bool, StoreActionOut]],
) -> Response[Any]:
    """The script gets the API's answer (or its problem: 409 when a colleague accepted
    first); a plain form goes back to the list, with a notice when it did not land."""
    page = "text/html" in request.headers.get("accept", "")
    try:
        created, answer = await work
    except (Conflict, NotFound, InvalidInput) as exc:
        if not page:
            raise
        notice = (
            "gone"
            if isinstance(exc, NotFound)
            else {"accept": "taken", "decline": "late"}.get(action, "receipt")
        )
        where = f"/web/advisor/?notice={notice}&order={quote(order_id, safe='')}"
        return Redirect(path=where, status_code=303)
    if page:
        return Redirect(path="/web/advisor/", status_code=303)
    return Response(answer, status_code=201 if created else 200)


async def _unchanged(work: Awaitable[StoreActionOut]) -> tuple[bool, StoreActionOut]:
    return False, await work


class AdvisorOrderPages(Controller):
    path = "/advisor/orders"
    include_in_schema = False

    @post("/{order_id:str}/accept", status_code=200)
    async def accept(self, request: Request[Any, Any, Any], order_id: OrderIdPath) -> Response[Any]:
        advisor_id, store = await _store(request)
        work = _unchanged(store_side.accept(store, advisor_id, order_id))
        return await _answer(request, order_id, "accept", work)

    @post("/{order_id:str}/decline", status_code=200)
    async def decline(
        self, request: Request[Any, Any, Any], order_id: OrderIdPath
    ) -> Response[Any]:
        advisor_id, store = await _store(request)
        limits = settings_of(request).o2o_limits
        work = _unchanged(store_side.decline(store, advisor_id, order_id, limits))
        return await _answer(request, order_id, "decline", work)

    @post("/{order_id:str}/delivered", status_code=201)
    async def delivered(
        self,
        request: Request[Any, Any, Any],
        order_id: OrderIdPath,
        data: Annotated[ReceiptForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        advisor_id, store = await _store(request)
        rule = settings_of(request).points_rule
        return await _answer(
            request, order_id, "delivered", _delivered(store, advisor_id, order_id, data, rule)
        )


async def _delivered(
    store: StoreRef, advisor_id: int, order_id: str, data: ReceiptForm, rule: PointsRule
) -> tuple[bool, StoreActionOut]:
    try:
        body = msgspec.convert({"receipt_id": data.receipt_id.strip()}, DeliveredIn)
    except msgspec.ValidationError as exc:
        error = msgspec_field_error(exc)
        raise InvalidInput(f"{error.field}: {error.message}", [error]) from None
    return await store_side.delivered(store, advisor_id, order_id, body, rule)
