"""What every page shares: the session cookie and who is signed in, Chinese labels,
and the lenient period a page falls back to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response
from litestar.exceptions import NotAuthorizedException
from litestar.response import Redirect
from litestar.security.jwt import JWTAuth, Token

from audit import trail
from core import clock
from core.errors import NotFound
from core.periods import Period, month_of, parse_period
from members.accounts import Principal

WEB_COOKIE = "tt_session"
PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
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
    "points_expiring": "积分将过期",
    "tier_up": "会员升级",
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
HOME_OF = {
    "advisor": "/web/advisor/",
    "owner": "/web/owner/",
    "hq": "/web/hq/",
    "region": "/web/region/",
}


class SignInFirst(Exception):
    """A page asked for without a (valid) session: off to the sign-in page."""


async def page_user(request: Request[Any, Any, Any], *roles: str) -> Principal:
    """Who the session cookie names, checked as the API checks a bearer token; a page
    of another role is not found."""
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
    trail.acting_as(f"{who.role}:{who.phone}")
    return who


def sign_in_redirect(request: Request[Any, Any, Any], _: SignInFirst) -> Response[Any]:
    if "text/html" not in request.headers.get("accept", "text/html"):
        # A script's request (the offline queue): say so, rather than redirect.
        return Response({"title": "sign in first", "status": 401}, status_code=401)
    return Redirect(path="/web/login")


def page_period(text: str | None, tz: str) -> Period:
    """A page's period: the one asked for, or this month (a bad link shows this month)."""
    today = clock.today(clock.zone(tz))
    try:
        return parse_period(text) if text else month_of(today)
    except ValueError:
        return month_of(today)
