"""HQ's pages: the month's attainment by region (the insights are in insights.py),
the playbook, contests, and the month's close and bonus statement. Each form goes
through the same services as its API twin."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, Template
from msgspec import Struct

from advisor_api.params import MonthPath
from advisor_api.web import charts
from advisor_api.web.common import KINDS_ZH, page_user
from core import clock
from core.errors import DomainError, InvalidInput, NotFound, msgspec_field_error
from core.periods import MONTH_PATTERN, month_of, month_or_error, parse_period
from incentives import boards, contests, statements
from incentives.schemas import ContestIn
from incentives.targets import target_totals
from members.scopes import Scope
from orders import queries as orders
from tasks.playbook import Rule, load_rules, save_rules

UNROUTED_SHOWN = 100


class RuleForm(Struct):
    due_offset_days: int
    expire_offset_days: int
    priority: int
    script: str
    enabled: str = ""  # a checkbox: "on" or absent
    urgent: str = ""


def contest_from_form(form: dict[str, str]) -> ContestIn:
    """The API's request from the page's form: two weights may be given, and a PK
    contest pairs the scope's stores itself."""
    weights = {
        kind: value
        for kind in ("points", "new_member")
        if (value := form.get(f"{kind}_weight", "").strip())
    }
    fields = {k: v for k, v in form.items() if not k.endswith("_weight") and k != "_csrf_token"}
    try:
        return msgspec.convert(
            {
                **fields,
                "weights": weights or None,
                "pairs": "auto" if form.get("kind") == "pk" else None,
            },
            ContestIn,
            strict=False,
        )
    except msgspec.ValidationError as exc:
        error = msgspec_field_error(exc)
        raise InvalidInput(f"{error.field}: {error.message}", [error]) from None


def _back(error: DomainError, **query: str) -> Redirect:
    return Redirect(path="/web/hq/", query_params={**query, "error": error.detail}, status_code=303)


class HqPages(Controller):
    path = "/hq"
    include_in_schema = False

    @get("/")
    async def home(
        self,
        request: Request[Any, Any, Any],
        month: Annotated[str | None, QueryParameter(pattern=MONTH_PATTERN)] = None,
        error: Annotated[str | None, QueryParameter(max_length=300)] = None,
    ) -> Template:
        who = await page_user(request, "hq")
        today = clock.today(clock.zone(clock.DEFAULT_TIMEZONE))
        chosen = month or month_of(month_of(today).first - timedelta(days=1)).name
        closed = await statements.closed_months()
        this_month = month_of(today).name
        regions = await target_totals(Scope("national", "national"), this_month, "region")
        return Template(
            "hq.html",
            context={
                "who": who,
                "this_month": this_month,
                "regions": [(row, charts.target_bars(row)) for row in regions],
                "rules": list((await load_rules()).values()),
                "kinds": KINDS_ZH,
                "contests": await contests.recent_contests(),
                "month": chosen,
                "closed": closed,
                "is_closed": any(c["month"] == chosen for c in closed),
                "error": error,
                "today": today,
            },
        )

    @get("/o2o")
    async def o2o(
        self,
        request: Request[Any, Any, Any],
        month: Annotated[str | None, QueryParameter(pattern=MONTH_PATTERN)] = None,
    ) -> Template:
        """The orders no store took, and how orders were routed in a month by region."""
        who = await page_user(request, "hq")
        tz = clock.zone(clock.DEFAULT_TIMEZONE)
        chosen = month_of(clock.today(tz)).name if month is None else month_or_error(month)
        return Template(
            "hq_o2o.html",
            context={
                "who": who,
                "month": chosen,
                "routing": await orders.routing_figures(parse_period(chosen), tz),
                "unrouted": await orders.hq_orders("unrouted", UNROUTED_SHOWN, 0),
                "settings": request.app.state.settings,
                "tz": tz,
            },
        )

    @post("/playbook/{kind:str}", status_code=303)
    async def save_rule(
        self,
        request: Request[Any, Any, Any],
        kind: Annotated[str, PathParameter(pattern=r"^[a-z_0-9]{1,32}$")],
        data: Annotated[RuleForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        await page_user(request, "hq")
        rules = await load_rules()
        if kind not in rules:
            raise NotFound(f"没有 {kind} 规则")
        params = {**rules[kind].params, "urgent": bool(data.urgent)}
        rule = Rule(
            kind=kind,
            enabled=bool(data.enabled),
            due_offset_days=data.due_offset_days,
            expire_offset_days=data.expire_offset_days,
            priority=data.priority,
            script=data.script,
            params=params,
        )
        try:
            await save_rules([rule])
        except DomainError as exc:
            return _back(exc)
        return Redirect(path="/web/hq/", status_code=303)

    @post("/contests", status_code=303)
    async def create_contest(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        await page_user(request, "hq")
        try:
            contest = await contests.create_contest(contest_from_form(data))
        except DomainError as exc:
            return _back(exc)
        return Redirect(path=f"/web/hq/contests/{contest.contest_id}", status_code=303)

    @get("/contests/{contest_id:int}")
    async def contest(
        self,
        request: Request[Any, Any, Any],
        contest_id: Annotated[int, PathParameter(ge=1, le=2**31 - 1)],
    ) -> Template:
        who = await page_user(request, "hq")
        return Template(
            "hq_contest.html",
            context={"who": who, "s": await boards.standings(who, contest_id, 50)},
        )

    @post("/periods/{month:str}/close", status_code=303)
    async def close(self, request: Request[Any, Any, Any], month: MonthPath) -> Redirect:
        await page_user(request, "hq")
        try:
            await statements.close_month(month_or_error(month, "month"))
        except DomainError as exc:
            return _back(exc, month=month)
        return Redirect(path="/web/hq/", query_params={"month": month}, status_code=303)

    @get("/bonus/{month:str}")
    async def bonus_csv(
        self,
        request: Request[Any, Any, Any],
        month: Annotated[str, PathParameter(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])[.]csv$")],
    ) -> Response[bytes]:
        await page_user(request, "hq")
        statement = await statements.statement(month_or_error(month[:7], "month"))
        return Response(
            statements.to_csv(statement),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="bonus-{month}"'},
        )
