"""The app factory: the one place routes, auth, errors, metrics and the database are
wired."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Response, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.plugins.prometheus import PrometheusConfig
from litestar.routes import HTTPRoute
from litestar.stores.memory import MemoryStore
from litestar.stores.registry import StoreRegistry
from litestar.types import ControllerRouterHandler, Middleware, Scope

from advisor_api.controllers.advisor import AdvisorController
from advisor_api.controllers.audit import HqAuditController
from advisor_api.controllers.hq import HqRegistryController
from advisor_api.controllers.hq_tasks import HqPlaybookController
from advisor_api.controllers.imports import HqImportsController
from advisor_api.controllers.incentives import HqIncentivesController, LeaderboardController
from advisor_api.controllers.insights import InsightsController, TargetsController
from advisor_api.controllers.o2o import (
    AdvisorOrdersController,
    ChannelOrdersController,
    HqO2oController,
)
from advisor_api.controllers.ops import MetricsController, live, ready
from advisor_api.controllers.owner import OwnerController
from advisor_api.controllers.points import HqPointsController
from advisor_api.controllers.pos import PosController
from advisor_api.controllers.session import health, login
from advisor_api.errors import EXCEPTION_HANDLERS
from advisor_api.login_guard import PhoneLockout
from advisor_api.observe import configure_logging, request_log
from advisor_api.openapi import document_problems, state_schemas_exactly, strict_bodies
from advisor_api.scheduler import Scheduler
from advisor_api.security import (
    CHANNEL_SCHEME,
    CHANNEL_SECURITY_SCHEME,
    POS_SCHEME,
    POS_SECURITY_SCHEME,
    ChannelKeys,
    PosKeys,
    build_jwt_auth,
)
from advisor_api.settings import Settings
from advisor_api.today_cache import TodayCache
from advisor_api.web import index, template_config, web_router
from advisor_api.wiring import build_dispatcher, wire_domains
from core.db import connection_pool
from incentives.ladders import LADDERS

log = logging.getLogger("tiantian")

POOL_MAX_SIZE = 20


def _lifespan(
    settings: Settings, scheduler: bool, today_cache: TodayCache
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with connection_pool(POOL_MAX_SIZE):
            jobs = (
                Scheduler(
                    build_dispatcher(settings.push),
                    settings.push.interval_seconds,
                    settings.o2o_limits,
                )
                if scheduler
                else None
            )
            app.state.scheduler = jobs
            if jobs is not None:
                await jobs.start()
            await today_cache.start()
            await LADDERS.start(settings.table_cache_seconds, settings.table_fresh_seconds)
            try:
                yield
            finally:
                await LADDERS.stop()
                await today_cache.stop()
                if jobs is not None:
                    await jobs.stop()

    return lifespan


def _routes(
    settings: Settings, extra_routes: Sequence[ControllerRouterHandler]
) -> list[ControllerRouterHandler]:
    login_rate = RateLimitConfig(rate_limit=("minute", settings.login_per_minute_per_address))
    return [
        health,
        live,
        ready,
        MetricsController,
        # Mounted on the login route alone: an app-wide middleware would cost every
        # request a look at its path.
        Router(path="/", route_handlers=[login], middleware=[login_rate.middleware]),
        PosController,
        HqRegistryController,
        HqPlaybookController,
        AdvisorController,
        OwnerController,
        LeaderboardController,
        index,
        web_router(settings.jwt_secret, settings.secure_cookies),
        HqIncentivesController,
        HqPointsController,
        InsightsController,
        TargetsController,
        ChannelOrdersController,
        AdvisorOrdersController,
        HqO2oController,
        HqAuditController,
        HqImportsController,
        *extra_routes,
    ]


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Tiantian 天天行动力",
        version="1.0.0",
        description="Daily follow-up tasks, member points and advisor incentives "
        "for mother-and-baby stores. Every error is an RFC 9457 problem document "
        "(application/problem+json) naming the fields at fault.",
        path="/schema",
        render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        components=Components(
            security_schemes={
                POS_SECURITY_SCHEME: POS_SCHEME,
                CHANNEL_SECURITY_SCHEME: CHANNEL_SCHEME,
            }
        ),
    )


def _middleware(settings: Settings) -> list[Middleware]:
    # Request counts and durations by route template (not by path, which would make a
    # series per member); the business figures live in core.metrics.
    prometheus = PrometheusConfig(
        app_name="tiantian", prefix="tiantian_http", group_path=True, exclude=["^/metrics"]
    )
    return [request_log(settings.access_log), prometheus.middleware]


def _allow_every_method(app: Litestar) -> None:
    """``OPTIONS`` lists every method of its path. Litestar makes the OPTIONS handler
    with the first method registered on a path and keeps it when a controller adds
    another (GET, then PUT), so Allow would miss the later ones: each is remade here
    from its route's final methods."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        allow = ", ".join(sorted(route.methods))
        for handler in route.route_handlers:
            if getattr(handler.fn, "__name__", "") == "options_handler":

                def options_handler(scope: Scope, allow: str = allow) -> Response[None]:
                    return Response(
                        content=None,
                        status_code=204,
                        headers={"Allow": allow},
                        media_type=MediaType.TEXT,
                    )

                handler._fn = options_handler  # type: ignore[assignment]  # sync, as Litestar made it


def create_app(
    settings: Settings | None = None,
    *,
    scheduler: bool = True,
    extra_routes: Sequence[ControllerRouterHandler] = (),
) -> Litestar:
    """The app. ``extra_routes`` mounts more handlers beside the contract's (the
    benchmarks' plain endpoint)."""
    settings = settings or Settings.from_env()
    wire_domains(settings.conversion_days)
    today_cache = TodayCache(settings.today_cache_seconds)
    stores = StoreRegistry(default_factory=lambda _: MemoryStore())
    jwt_auth = build_jwt_auth(settings)
    state: dict[str, Any] = {
        "settings": settings,
        "jwt_auth": jwt_auth,
        "pos_keys": PosKeys(settings.pos_key_cache_seconds),
        "channel_keys": ChannelKeys(settings.pos_key_cache_seconds),
        "scheduler": None,
        "today_cache": today_cache,
        "login_lockout": PhoneLockout(
            stores.get("login_failures"),
            settings.login_failures_per_phone,
            settings.login_lockout_seconds,
        ),
    }
    app = Litestar(
        route_handlers=_routes(settings, extra_routes),
        lifespan=[_lifespan(settings, scheduler, today_cache)],
        on_app_init=[jwt_auth.on_app_init],
        before_request=strict_bodies,
        middleware=_middleware(settings),
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=template_config(),
        stores=stores,
        state=State(state),
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins))
        if settings.cors_origins
        else None,
        openapi_config=_openapi(),
    )
    document_problems(app)
    state_schemas_exactly(app)
    _allow_every_method(app)
    return app


def app_from_env() -> Litestar:
    """The factory ``tiantian serve --workers N`` hands each worker process (a fresh
    interpreter: it configures its own logging)."""
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    return create_app(settings, scheduler=os.environ.get("TIANTIAN_SCHEDULER", "1") != "0")
