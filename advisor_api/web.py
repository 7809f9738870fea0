"""The pages people open (``/web``): server-rendered Jinja, in Chinese, light enough
for a cheap phone on weak 4G.

Pages sign in with the same phone and password as ``/auth/login``; the token is kept
in an HttpOnly, SameSite=Strict cookie (the JSON API keeps its Bearer tokens), and
every form post carries Litestar's CSRF token. A page reads the same services as the
API, with the same scoping: an owner's pages show only their stores.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, Router, get, post
from litestar.config.csrf import CSRFConfig
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.params import Body, PathParameter, QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.security.jwt import JWTAuth, Token
from litestar.template.config import TemplateConfig
from msgspec import Struct

from advisor_api.login_guard import PhoneLockout
from incentives import boards, contests, statements
from incentives.queries import store_cards
from incentives.services import month_or_error, score_text
from incentives.statements import close_month
from members import accounts, clock, demo
from members.accounts import Principal
from members.db import fetch
from members.errors import DomainError, InvalidInput, NotFound, msgspec_field_error
from members.periods import Period, month_of, parse_period, week_key
from tasks import outcomes, queries
from tasks.dashboard import store_dashboard
from tasks.services import Rule, load_rules, save_rules

WEB_COOKIE = "tt_session"
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
CodePath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
KINDS_ZH = {
    "followup_3d": "浇水施肥",
    "replenish": "快用完",
    "stage_up": "转段",
    "reactivate": "解冻",
    "milestone": "月龄关怀",
    "welcome": "欢迎",
    "campaign": "季节关怀",
    "callback": "约定回访",
    "delivery": "送货",
}
RESULTS_ZH = {
    "reached": "已联系",
    "no_answer": "未接通",
    "will_buy": "会购买",
    "delivery_requested": "要送货",
    "declined": "拒绝",
    "wrong_number": "号码错误",
    "do_not_contact": "勿扰",
}


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    config = TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
    return config


class SignInFirst(Exception):
    """A page asked for without a (valid) session: off to the sign-in page."""


async def page_user(request: Request[Any, Any, Any], *roles: str) -> Principal:
    token = request.cookies.get(WEB_COOKIE)
    if not token:
        raise SignInFirst()
    jwt_auth: JWTAuth[Principal, Token] = request.app.state.jwt_auth
    try:
        decoded = Token.decode(token, secret=jwt_auth.token_secret, algorithm=jwt_auth.algorithm)
    except NotAuthorizedException:
        raise SignInFirst() from None
    who = await jwt_auth.retrieve_user_handler(decoded, request)  # type: ignore[misc]
    if not isinstance(who, Principal):
        raise SignInFirst()
    if who.role not in roles:
        raise NotFound("这个页面不属于您的账号")
    return who


def _sign_in_redirect(request: Request[Any, Any, Any], _: SignInFirst) -> Response[Any]:
    if "text/html" not in request.headers.get("accept", "text/html"):
        # A script's request (the offline queue): say so, rather than redirect.
        return Response({"title": "sign in first", "status": 401}, status_code=401)
    return Redirect(path="/web/login")


def _home_of(role: str) -> str:
    return {"advisor": "/web/advisor/", "owner": "/web/owner/", "hq": "/web/hq/"}[role]


class LoginForm(Struct):
    phone: str
    password: str


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


async def _demo_logins() -> list[dict[str, str]]:
    """The demo chain's logins, when this is the demo chain (for `make run`)."""
    if not await fetch("SELECT 1 FROM user_account WHERE phone = {}", demo.HQ_PHONE):
        return []
    return [
        {"who": "总部 HQ", "phone": demo.HQ_PHONE, "page": "/web/hq/"},
        {"who": "店主 S0001、S0002", "phone": demo.OWNER_PHONE, "page": "/web/owner/"},
        {"who": "店主 S0004", "phone": demo.OWNER2_PHONE, "page": "/web/owner/"},
        {"who": "育儿顾问 A00001", "phone": demo.advisor_phone(1), "page": "/web/advisor/"},
        {"who": "育儿顾问 A00002", "phone": demo.advisor_phone(2), "page": "/web/advisor/"},
    ]


@get("/", include_in_schema=False)
async def index() -> Redirect:
    return Redirect(path="/web/login")


class SessionPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/login")
    async def login_page(self, request: Request[Any, Any, Any]) -> Template:
        return Template(
            "login.html",
            context={"demo": await _demo_logins(), "password": demo.DEMO_PASSWORD, "error": None},
        )

    @post("/login", status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        lockout: PhoneLockout = request.app.state.login_lockout
        try:
            async with lockout.serialised(data.phone):
                await lockout.check(data.phone)
                who = await accounts.authenticate(data.phone, data.password)
                if who is None:
                    await lockout.failed(data.phone)
                else:
                    await lockout.succeeded(data.phone)
        except DomainError as exc:
            who, error = None, exc.detail
        else:
            error = "手机号或密码不对"
        if who is None:
            return Template(
                "login.html",
                context={"demo": await _demo_logins(), "password": "", "error": error},
                status_code=401,
            )
        jwt_auth: JWTAuth[Principal, Token] = request.app.state.jwt_auth
        ttl = jwt_auth.default_token_expiration
        token = jwt_auth.create_token(
            identifier=str(who.user_id), token_expiration=ttl, token_extras={"role": who.role}
        )
        response = Redirect(path=_home_of(who.role), status_code=303)
        response.set_cookie(
            WEB_COOKIE,
            token,
            max_age=int(ttl.total_seconds()),
            path="/web",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https" or request.app.state.settings.secure_cookies,
        )
        return response

    @post("/logout", status_code=303)
    async def logout(self) -> Response[Any]:
        response = Redirect(path="/web/login", status_code=303)
        response.delete_cookie(WEB_COOKIE, path="/web")
        return response


# --- the owner's pages --------------------------------------------------------


def _period(text: str | None, tz: str) -> Period:
    today = clock.today(clock.zone(tz))
    try:
        return parse_period(text) if text else month_of(today)
    except ValueError:
        return month_of(today)


async def _trend(store_id: int, tz: str, days: int = 30) -> dict[str, Any]:
    """The store's last 30 days of points and new members, as SVG polyline points."""
    today = clock.today(clock.zone(tz))
    first = today - timedelta(days=days - 1)
    keys = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    rows = {
        r["period"]: r
        for r in await fetch(
            "SELECT period, points, new_members FROM store_score WHERE store = {}"
            " AND period >= {} AND period <= {}"
            " AND LENGTH(period) = 10",
            store_id,
            keys[0],
            keys[-1],
        )
    }
    points = [int(rows[k]["points"]) if k in rows else 0 for k in keys]
    joined = [int(rows[k]["new_members"]) if k in rows else 0 for k in keys]
    top = max(points) or 1
    width, height = 300, 80
    step = width / (days - 1)
    line = " ".join(f"{i * step:.1f},{height - p * height / top:.1f}" for i, p in enumerate(points))
    return {
        "line": line,
        "bars": [(i * step, n) for i, n in enumerate(joined) if n],
        "first": keys[0],
        "last": keys[-1],
        "max": top,
        "total_points": sum(points),
        "total_members": sum(joined),
        "width": width,
        "height": height,
    }


async def _pk_for(store_id: int) -> list[dict[str, Any]]:
    """Running PK contests the store is paired in: the head-to-head so far."""
    today = clock.today(clock.zone(clock.DEFAULT_TIMEZONE))
    rows = await fetch(
        "SELECT DISTINCT c.id FROM contest c JOIN contest_pair p ON p.contest = c.id"
        " WHERE c.kind = 'pk' AND c.starts_on <= {} AND c.ends_on >= {}"
        " AND (p.store_a = {} OR p.store_b = {}) ORDER BY c.id",
        today,
        today,
        store_id,
        store_id,
    )
    found = []
    for row in rows:
        contest = await contests.load_contest(int(row["id"]))
        scores = await contests.pk_scores(contest)
        cards = await store_cards(list(scores))
        for a, b in contest.pairs:
            if store_id in (a, b):
                other = b if a == store_id else a
                mine, theirs = scores[store_id].score, scores[other].score
                found.append(
                    {
                        "name": contest.name,
                        "ends_on": contest.ends_on,
                        "mine": score_text(mine),
                        "theirs": score_text(theirs),
                        "lead": (mine > theirs) - (mine < theirs),
                        "other": cards[other],
                    }
                )
    return found


async def _own_stores(who: Principal) -> list[dict[str, Any]]:
    """An owner's stores (their login already names them), by code."""
    cards = await store_cards(sorted(who.store_ids))
    return sorted(cards.values(), key=lambda card: card["store_code"])


class OwnerPages(Controller):
    path = "/owner"
    include_in_schema = False

    @get("/")
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        who = await page_user(request, "owner", "hq")
        if who.role == "hq":
            rows = await fetch("SELECT code FROM store ORDER BY code LIMIT 1")
            codes = [row["code"] for row in rows]
        else:
            codes = [card["store_code"] for card in await _own_stores(who)]
        if not codes:
            raise NotFound("没有门店")
        return Redirect(path=f"/web/owner/stores/{codes[0]}")

    @get("/stores/{code:str}")
    async def store(
        self,
        request: Request[Any, Any, Any],
        code: CodePath,
        period: Annotated[str | None, QueryParameter(max_length=10)] = None,
        board: Annotated[str, QueryParameter(pattern="^(store|region|national)$")] = "store",
    ) -> Template:
        who = await page_user(request, "owner", "hq")
        allowed = None if who.role == "hq" else who.store_ids
        found = await fetch(
            "SELECT id, code, name, region, timezone FROM store WHERE code = {}", code
        )
        if not found or (allowed is not None and found[0]["id"] not in allowed):
            raise NotFound(f"没有门店 {code},或不是您的门店")
        store = found[0]
        chosen = _period(period, store["timezone"])
        dashboard = await store_dashboard(code, allowed, chosen)
        board_scope = {
            "store": f"store:{code}",
            "region": f"region:{store['region']}",
            "national": "national",
        }[board]
        table = await boards.advisor_table(who, board_scope, chosen, 20)
        national = await boards.store_table(who, "national", chosen, 1, False)
        regional = await boards.store_table(who, f"region:{store['region']}", chosen, 1, False)
        mine_national = next((m for m in national.mine if m.store_code == code), None)
        mine_regional = next((m for m in regional.mine if m.store_code == code), None)
        today = clock.today(clock.zone(store["timezone"]))
        owned = await _own_stores(who) if who.role == "owner" else []
        return Template(
            "owner_store.html",
            context={
                "who": who,
                "store": store,
                "stores": owned,
                "d": dashboard,
                "period": chosen,
                "periods": [
                    ("今天", today.isoformat()),
                    ("本周", week_key(today)),
                    ("本月", month_of(today).name),
                ],
                "board": board,
                "table": table,
                "rank_national": mine_national,
                "rank_regional": mine_regional,
                "trend": await _trend(store["id"], store["timezone"]),
                "pk": await _pk_for(store["id"]),
            },
        )


# --- the advisor's phone page -------------------------------------------------


class AdvisorPages(Controller):
    path = "/advisor"
    include_in_schema = False

    @get("/")
    async def today(self, request: Request[Any, Any, Any]) -> Template:
        who = await page_user(request, "advisor")
        assert who.advisor_id is not None and who.timezone is not None
        day = clock.today(clock.zone(who.timezone))
        listed = await queries.advisor_today(who.advisor_id, who.timezone, day)
        score = await boards.my_score(who.advisor_id, month_of(day))
        return Template(
            "advisor.html",
            context={
                "who": who,
                "today": listed,
                "score": score,
                "kinds": KINDS_ZH,
                "results": RESULTS_ZH,
                "tomorrow": (day + timedelta(days=1)).isoformat(),
                # The server's clock: calls are timed by it, whatever the phone's says.
                "now": clock.now().isoformat(),
            },
        )

    @post("/tasks/{task_id:int}/outcome", status_code=200)
    async def outcome(
        self,
        request: Request[Any, Any, Any],
        task_id: Annotated[int, PathParameter(ge=1, le=2**62)],
        data: Annotated[OutcomeForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        who = await page_user(request, "advisor")
        assert who.advisor_id is not None and who.timezone is not None
        try:
            body = msgspec.convert(
                {
                    "client_outcome_id": data.client_outcome_id or uuid.uuid4().hex,
                    "channel": data.channel,
                    "result": data.result,
                    "note": data.note,
                    "recorded_at": data.recorded_at or clock.now().isoformat(),
                },
                outcomes.OutcomeIn,
                strict=False,
            )
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc), [msgspec_field_error(exc)]) from None
        created, answer = await outcomes.record_outcome(who.advisor_id, who.timezone, task_id, body)
        if "text/html" in request.headers.get("accept", ""):
            return Redirect(path="/web/advisor/", status_code=303)
        return Response(answer, status_code=201 if created else 200)

    @get("/app.js")
    async def script(self) -> Response[bytes]:
        return Response(
            (STATIC / "app.js").read_bytes(),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @get("/sw.js")
    async def service_worker(self) -> Response[bytes]:
        return Response(
            (STATIC / "sw.js").read_bytes(),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/web/advisor/"},
        )

    @post("/tasks/{task_id:int}/snooze", status_code=303)
    async def snooze(
        self,
        request: Request[Any, Any, Any],
        task_id: Annotated[int, PathParameter(ge=1, le=2**62)],
        data: Annotated[SnoozeForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        who = await page_user(request, "advisor")
        assert who.advisor_id is not None and who.timezone is not None
        await outcomes.snooze(who.advisor_id, who.timezone, task_id, data.until)
        return Redirect(path="/web/advisor/", status_code=303)


# --- HQ's pages ----------------------------------------------------------------


class RuleForm(Struct):
    due_offset_days: int
    expire_offset_days: int
    priority: int
    script: str
    enabled: str = ""  # a checkbox: "on" or absent
    urgent: str = ""


class ContestForm(Struct):
    name: str
    kind: str
    subject: str
    scope: str
    starts_on: date
    ends_on: date
    points_weight: str = ""
    new_member_weight: str = ""


class HqPages(Controller):
    path = "/hq"
    include_in_schema = False

    @get("/")
    async def home(
        self,
        request: Request[Any, Any, Any],
        month: Annotated[str | None, QueryParameter(pattern=r"^\d{4}-\d{2}$")] = None,
        error: Annotated[str | None, QueryParameter(max_length=300)] = None,
    ) -> Template:
        who = await page_user(request, "hq")
        today = clock.today(clock.zone(clock.DEFAULT_TIMEZONE))
        last_month = month_of(month_of(today).first - timedelta(days=1)).name
        chosen = month or last_month
        closed = await fetch("SELECT month, closed_at FROM closed_month ORDER BY month DESC")
        return Template(
            "hq.html",
            context={
                "who": who,
                "rules": list((await load_rules()).values()),
                "kinds": KINDS_ZH,
                "contests": await fetch(
                    "SELECT id, name, kind, subject, scope, starts_on, ends_on FROM contest"
                    " ORDER BY id DESC LIMIT 50"
                ),
                "month": chosen,
                "closed": closed,
                "is_closed": any(c["month"] == chosen for c in closed),
                "error": error,
                "today": today,
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
        rule = rules[kind]
        params = dict(rule.params)
        params["urgent"] = bool(data.urgent)
        try:
            await save_rules(
                [
                    Rule(
                        kind=kind,
                        enabled=bool(data.enabled),
                        due_offset_days=data.due_offset_days,
                        expire_offset_days=data.expire_offset_days,
                        priority=data.priority,
                        script=data.script,
                        params=params,
                    )
                ]
            )
        except DomainError as exc:
            return Redirect(path="/web/hq/", query_params={"error": exc.detail}, status_code=303)
        return Redirect(path="/web/hq/", status_code=303)

    @post("/contests", status_code=303)
    async def create_contest(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[ContestForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        await page_user(request, "hq")
        try:
            if data.kind not in ("league", "pk") or data.subject not in ("advisor", "store"):
                raise InvalidInput.on("kind", "类型或对象不对")
            weights = {
                kind: Decimal(value)
                for kind, value in (
                    ("points", data.points_weight),
                    ("new_member", data.new_member_weight),
                )
                if value.strip()
            }
            contest, _, _ = await contests.create_contest(
                data.name,
                data.kind,
                data.subject,
                data.scope,
                data.starts_on,
                data.ends_on,
                weights,
                "auto" if data.kind == "pk" else None,
            )
        except (DomainError, InvalidOperation) as exc:
            detail = exc.detail if isinstance(exc, DomainError) else "权重请填数字"
            return Redirect(path="/web/hq/", query_params={"error": detail}, status_code=303)
        return Redirect(path=f"/web/hq/contests/{contest.id}", status_code=303)

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
    async def close(
        self,
        request: Request[Any, Any, Any],
        month: Annotated[str, PathParameter(pattern=r"^\d{4}-\d{2}$")],
    ) -> Redirect:
        await page_user(request, "hq")
        try:
            await close_month(month_or_error(month, "month"))
        except DomainError as exc:
            return Redirect(
                path="/web/hq/", query_params={"month": month, "error": exc.detail}, status_code=303
            )
        return Redirect(path="/web/hq/", query_params={"month": month}, status_code=303)

    @get("/bonus/{month:str}")
    async def bonus_csv(
        self,
        request: Request[Any, Any, Any],
        month: Annotated[str, PathParameter(pattern=r"^\d{4}-\d{2}\.csv$")],
    ) -> Response[bytes]:
        await page_user(request, "hq")
        statement = await statements.statement(month_or_error(month[:7], "month"))
        return Response(
            statements.to_csv(statement),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="bonus-{month}"'},
        )


def web_router(jwt_secret: str, secure_cookies: bool = False) -> Router:
    csrf = CSRFConfig(
        secret=jwt_secret,
        cookie_secure=secure_cookies,
        cookie_path="/web",
        cookie_samesite="strict",
        cookie_httponly=False,  # the offline queue reads it to send x-csrftoken
    )
    return Router(
        path="/web",
        route_handlers=[SessionPages, OwnerPages, AdvisorPages, HqPages],
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        exception_handlers={SignInFirst: _sign_in_redirect},
        include_in_schema=False,
    )
