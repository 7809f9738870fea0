"""Sign-in and sign-out pages: the same phone, password and lockout as
``/auth/login``; the token lives in an HttpOnly, SameSite=Strict cookie on ``/web``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from msgspec import Struct

from advisor_api import demo
from advisor_api.login_guard import issue_token, sign_in
from advisor_api.web.common import HOME_OF, WEB_COOKIE
from core.errors import DomainError
from members.queries import is_demo_chain


class LoginForm(Struct):
    phone: str
    password: str


async def _demo_logins() -> list[dict[str, str]]:
    """The demo chain's logins, when this is the demo chain (for `make run`)."""
    if not await is_demo_chain(demo.HQ_PHONE):
        return []
    return [
        {"who": "总部 HQ", "phone": demo.HQ_PHONE, "page": "/web/hq/"},
        {"who": "店主 S0001、S0002", "phone": demo.OWNER_PHONE, "page": "/web/owner/"},
        {"who": "店主 S0004", "phone": demo.OWNER2_PHONE, "page": "/web/owner/"},
        {"who": "华南大区 营销通", "phone": demo.REGION_PHONE, "page": "/web/region/"},
        {"who": "育儿顾问 A00001", "phone": demo.advisor_phone(1), "page": "/web/advisor/"},
        {"who": "育儿顾问 A00002", "phone": demo.advisor_phone(2), "page": "/web/advisor/"},
    ]


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
        try:
            who = await sign_in(request.app.state.login_lockout, data.phone, data.password)
            error = "手机号或密码不对"
        except DomainError as exc:
            who, error = None, exc.detail
        if who is None:
            return Template(
                "login.html",
                context={"demo": await _demo_logins(), "password": "", "error": error},
                status_code=401,
            )
        token, ttl = issue_token(request.app.state.jwt_auth, who)
        response = Redirect(path=HOME_OF[who.role], status_code=303)
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
