"""The advisor's phone page: today's cards with their outcome buttons, and the
month's score. Works offline: a service worker keeps the page and the list, and
outcomes wait in IndexedDB with their ``client_outcome_id`` until the phone is back."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template
from msgspec import Struct

from advisor_api.params import Id, Offset, SearchText
from advisor_api.web import charts
from advisor_api.web.advisor_orders import notice_of, order_cards
from advisor_api.web.common import KINDS_ZH, RESULTS_ZH, STATIC, page_user
from advisor_api.web.member_page import RESULT_NAMES, member_context, search_context
from core import clock
from core.errors import InvalidInput, msgspec_field_error
from core.periods import month_of
from incentives import boards
from incentives.schemas import MyScore
from members.accounts import Principal
from tasks import deliveries, outcomes, queries
from tasks.schemas import CardMember, CardTask, OutcomeIn, TodayOut

SECTIONS = (("urgent", "紧急"), ("overdue", "逾期"), ("today", "今天"))


class OutcomeForm(Struct):
    result: str
    # The page's script sends both; a plain form post (no JavaScript) leaves them to
    # the server: a fresh id, and now.
    client_outcome_id: str = ""
    recorded_at: str = ""
    note: str = ""
    channel: str = "phone"


class SnoozeForm(Struct):
    until: date


def my_target_bars(score: MyScore) -> list[charts.Progress]:
    """The month's new members and points against the advisor's target; none without one."""
    target, attainment = score.target, score.attainment
    if target is None or attainment is None:
        return []
    return [
        charts.progress(
            "新会员", target.actual.new_members, target.new_members, attainment.new_members
        ),
        charts.progress("积分", target.actual.points, target.points, attainment.points),
    ]


def sections(today: TodayOut) -> list[tuple[str, str, list[tuple[CardMember, CardTask]]]]:
    """The day's tasks, one card each, in the phone's sections: 紧急 (a kind HQ marks
    urgent, such as a delivery, whatever its date), 逾期 (overdue), 今天 (due today);
    each in the list's order, most urgent first."""
    placed: dict[str, list[tuple[CardMember, CardTask]]] = {key: [] for key, _ in SECTIONS}
    for card in today.cards:
        for task in card.tasks:
            key = "urgent" if task.urgent else "overdue" if task.overdue else "today"
            placed[key].append((card.member, task))
    return [(key, title, placed[key]) for key, title in SECTIONS]


async def _advisor(request: Request[Any, Any, Any]) -> tuple[Principal, int, str]:
    who = await page_user(request, "advisor")
    assert who.advisor_id is not None and who.timezone is not None
    return who, who.advisor_id, who.timezone


def _outcome_in(data: OutcomeForm) -> OutcomeIn:
    try:
        return msgspec.convert(
            {
                "client_outcome_id": data.client_outcome_id or uuid.uuid4().hex,
                "channel": data.channel,
                "result": data.result,
                "note": data.note,
                "recorded_at": data.recorded_at or clock.now().isoformat(),
            },
            OutcomeIn,
            strict=False,
        )
    except msgspec.ValidationError as exc:
        error = msgspec_field_error(exc)
        raise InvalidInput(f"{error.field}: {error.message}", [error]) from None


def _script(name: str) -> Response[bytes]:
    headers = {"Cache-Control": "no-cache"}
    if name == "sw.js":
        headers["Service-Worker-Allowed"] = "/web/advisor/"
    return Response(
        (STATIC / name).read_bytes(), media_type="text/javascript; charset=utf-8", headers=headers
    )


class AdvisorPages(Controller):
    path = "/advisor"
    include_in_schema = False

    @get("/")
    async def today(
        self,
        request: Request[Any, Any, Any],
        notice: Annotated[str | None, QueryParameter()] = None,
        order: Annotated[str | None, QueryParameter()] = None,
    ) -> Template:
        who, advisor_id, timezone = await _advisor(request)
        day = clock.today(clock.zone(timezone))
        score = await boards.my_score(advisor_id, month_of(day))
        listed = await queries.advisor_today(advisor_id, timezone, day)
        minutes = request.app.state.settings.o2o_accept_minutes
        delivering = [t.task_id for c in listed.cards for t in c.tasks if t.kind == deliveries.KIND]
        orders, mine = await order_cards(who, delivering, minutes)
        return Template(
            "advisor.html",
            context={
                "who": who,
                "sections": sections(listed),
                # An O2O order's delivery card shows the order and its own buttons.
                "orders": orders,
                "mine": mine,
                "accept_minutes": minutes,
                "notice": notice_of(notice, order),
                # A kind's script reads the same on every card: sent once, numbered.
                "scripts": {
                    text: i
                    for i, text in enumerate(
                        dict.fromkeys(t.script for c in listed.cards for t in c.tasks)
                    )
                },
                "done": await queries.done_today(advisor_id, timezone, day),
                "score": score,
                "target_bars": my_target_bars(score),
                "kinds": KINDS_ZH,
                "results": RESULTS_ZH,
                "result_names": RESULT_NAMES,
                "tomorrow": (day + timedelta(days=1)).isoformat(),
                # The server's clock: calls are timed by it, whatever the phone's says.
                "now": clock.now().isoformat(),
            },
        )

    @get("/members/{member_id:int}")
    async def member(self, request: Request[Any, Any, Any], member_id: Id) -> Template:
        who, _, _ = await _advisor(request)
        context = await member_context(who, member_id, False)
        # An order's delivery is worked from its card on the day's list.
        opened = [t.task_id for t in context["open"] if t.kind == deliveries.KIND]
        context["order_tasks"] = set(await deliveries.orders_of_tasks(opened))
        return Template("member.html", context=context)

    @get("/search")
    async def search(
        self, request: Request[Any, Any, Any], q: SearchText = None, offset: Offset = 0
    ) -> Template:
        who, _, _ = await _advisor(request)
        context = await search_context(
            who, q, offset, "/web/advisor/", "/web/advisor/search", "/web/advisor/members/"
        )
        return Template("member_search.html", context=context)

    @post("/tasks/{task_id:int}/outcome", status_code=200)
    async def outcome(
        self,
        request: Request[Any, Any, Any],
        task_id: Id,
        data: Annotated[OutcomeForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        _, advisor_id, timezone = await _advisor(request)
        body = _outcome_in(data)
        created, answer = await outcomes.record_outcome(advisor_id, timezone, task_id, body)
        if "text/html" in request.headers.get("accept", ""):
            return Redirect(path="/web/advisor/", status_code=303)
        return Response(answer, status_code=201 if created else 200)

    @post("/tasks/{task_id:int}/snooze", status_code=303)
    async def snooze(
        self,
        request: Request[Any, Any, Any],
        task_id: Id,
        data: Annotated[SnoozeForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        _, advisor_id, timezone = await _advisor(request)
        await outcomes.snooze(advisor_id, timezone, task_id, data.until)
        return Redirect(path="/web/advisor/", status_code=303)

    @get("/app.js")
    async def script(self) -> Response[bytes]:
        return _script("app.js")

    @get("/sw.js")
    async def service_worker(self) -> Response[bytes]:
        return _script("sw.js")
