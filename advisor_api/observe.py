"""What an operator reads: one access line per request, a request id on every answer,
logs as text for people or JSON for machines, and the scheduler kept quiet unless
something is wrong."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from members.accounts import Principal

REQUEST_ID = "x-request-id"
# A caller's id is kept if it is short and plain; anything else gets a fresh one.
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access = logging.getLogger("tiantian.access")

# Fields of a record that are the logging module's own, not something a line says.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


JsonFormatter.converter = time.gmtime


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Logs to stderr, as text or JSON lines. APScheduler's every-five-seconds chatter
    is held to warnings (a job that fails or runs late); uvicorn's access log gives
    way to ours, which knows the route and the role; httpx's line a request (one a
    push sent, 50,000 of a morning's digests) gives way to the dispatcher's report."""
    formatter = (
        {"()": JsonFormatter}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"main": formatter},
            "handlers": {
                "stderr": {"class": "logging.StreamHandler", "formatter": "main"},
            },
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {
                "apscheduler": {"level": "WARNING"},
                "uvicorn.access": {"level": "WARNING"},
                "uvicorn.error": {"level": "INFO"},
                "piccolo": {"level": "WARNING"},
                "httpx": {"level": "WARNING"},
            },
        }
    )


def _role(scope: Scope) -> str:
    user = scope.get("user")
    if isinstance(user, Principal):
        return user.role
    state = scope.get("state") or {}
    return str(state.get("role", "-"))


def request_log(log_access: bool = True) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware: take the caller's ``X-Request-ID`` or make one, echo it on the
    answer, and (unless ``log_access`` is off) write one access line when it is sent."""

    def wrap(app: ASGIApp) -> ASGIApp:
        return _request_log(app, log_access)

    return wrap


def _request_log(app: ASGIApp, log_access: bool) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = given if _GOOD_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            if log_access:
                _access_line(scope, status, started, request_id)

    return middleware


def _access_line(scope: Scope, status: int, started: float, request_id: str) -> None:
    route = scope.get("path_template") or scope["path"]
    method = str(scope.get("method", ""))
    elapsed = (time.perf_counter() - started) * 1000
    access.info(
        "%s %s %s %.1fms",
        method,
        route,
        status,
        elapsed,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "ms": round(elapsed, 1),
            "role": _role(scope),
            "request_id": request_id,
        },
    )
