"""The pages people open (``/web``): server-rendered Jinja, in Chinese, light enough
for a cheap phone on weak 4G. One module per audience (sign-in, advisor, owner, HQ),
each calling the same services and read sides as its API twin, with the same
scoping: an owner's pages show only their stores.

Every form post carries Litestar's CSRF token.
"""

from __future__ import annotations

from litestar import Router, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.template.config import TemplateConfig

from advisor_api.web.advisor import AdvisorPages
from advisor_api.web.advisor_orders import AdvisorOrderPages
from advisor_api.web.common import TEMPLATES, SignInFirst, sign_in_redirect
from advisor_api.web.console import ConsolePages
from advisor_api.web.console_more import ConsoleMorePages
from advisor_api.web.hq import HqPages
from advisor_api.web.insights import InsightPages
from advisor_api.web.owner import OwnerPages
from advisor_api.web.session import SessionPages


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)


@get("/", include_in_schema=False)
async def index() -> Redirect:
    return Redirect(path="/web/login")


# The pages load nothing from elsewhere and are never framed: a script someone slips
# into a member's name cannot run, and no other site can dress the pages up.
PAGE_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none';"
        " base-uri 'self'; form-action 'self'",
    ),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]


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
        route_handlers=[
            SessionPages,
            OwnerPages,
            AdvisorPages,
            AdvisorOrderPages,
            HqPages,
            InsightPages,
            ConsolePages,
            ConsoleMorePages,
        ],
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        exception_handlers={SignInFirst: sign_in_redirect},
        response_headers=PAGE_HEADERS,
        include_in_schema=False,
    )
