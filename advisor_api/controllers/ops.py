"""For the people who run the service: ``/metrics`` for Prometheus, and the liveness
and readiness probes a load balancer or an orchestrator asks."""

from __future__ import annotations

import hmac
import os
from typing import Any

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.prometheus import PrometheusController
from msgspec import Struct
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from core.db import database_answers, migrations_behind
from notifications.queries import outbox_backlog


async def metrics_token(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """With ``TIANTIAN_METRICS_TOKEN`` set, only ``Authorization: Bearer <token>``."""
    token = connection.app.state.settings.metrics_token
    if not token:
        return
    given = connection.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise NotAuthorizedException("send the metrics token as a Bearer token")


class _Figures(Collector):
    """Figures read from the database at scrape time, the same from every worker."""

    def __init__(self, due: int, oldest: float) -> None:
        self.due, self.oldest = due, oldest

    def collect(self) -> Any:
        yield GaugeMetricFamily(
            "tiantian_push_outbox_due", "Pushes due now and not yet sent", value=self.due
        )
        yield GaugeMetricFamily(
            "tiantian_push_outbox_oldest_due_seconds",
            "How long the oldest due push has waited",
            value=self.oldest,
        )


class MetricsController(PrometheusController):
    """Litestar's Prometheus endpoint (one worker's registry, or every worker's files
    under ``PROMETHEUS_MULTIPROC_DIR``), with the outbox's backlog added."""

    path = "/metrics"
    guards = [metrics_token]
    include_in_schema = False

    @get()
    async def get(self) -> Response[bytes]:
        registry = CollectorRegistry()
        if multiprocess_dir():
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = REGISTRY
        text = generate_latest(registry)
        figures = CollectorRegistry()
        figures.register(_Figures(*await outbox_backlog()))
        return Response(
            text + generate_latest(figures),
            status_code=200,
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Probe(Struct, omit_defaults=True):
    status: str  # ok | unavailable
    detail: str | None = None


@get("/health/live", tags=["Health"], summary="The process answers (liveness)")
async def live() -> Probe:
    return Probe("ok")


@get(
    "/health/ready",
    tags=["Health"],
    summary="The database answers and its migrations are current (readiness)",
    responses={503: ResponseSpec(Probe, description="Not ready: send no traffic here yet")},
)
async def ready(request: Request[Any, Any, Any]) -> Response[Probe]:
    if not await database_answers():
        return Response(Probe("unavailable", "the database does not answer"), status_code=503)
    behind = await migrations_behind()
    if behind:
        detail = (
            f"{behind} migrations not applied: run tiantian migrate"
            if behind > 0
            else "the migration table cannot be read"
        )
        return Response(Probe("unavailable", detail), status_code=503)
    return Response(Probe("ok"), status_code=200)
