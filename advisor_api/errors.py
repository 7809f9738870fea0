"""Every error leaves as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from core.db import connection_lost
from core.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    field_error,
    is_calendar_error,
)

log = logging.getLogger("tiantian")

PROBLEM_JSON = "application/problem+json"
_DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidInput: 422,
    Conflict: 409,
    NotFound: 404,
    Forbidden: 403,
}


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _domain(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    status = next((code for kind, code in _DOMAIN_STATUS.items() if isinstance(exc, kind)), 400)
    return problem(status, exc.detail, title=exc.title, errors=exc.errors)


def _field_error(item: dict[str, Any]) -> FieldError:
    key = str(item.get("key") or "")
    message = str(item.get("message", "invalid"))
    # Litestar names the request body "data"; the client knows it as the body. An
    # absent body reaches here as a KeyError's repr of that name.
    if key == "data" and message in ("'data'", "data"):
        return FieldError("body", "a JSON body is required")
    path = "" if key == "data" else key
    error = field_error(path, message)
    if error.field == "body" and item.get("source") not in (None, "body"):
        return FieldError(str(item["source"]), error.message)
    return error


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [_field_error(item) for item in extra if isinstance(item, dict)]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or str(exc.detail)
    if errors and all(is_calendar_error(e.message) for e in errors):
        # The shape of a date the schema states, but no such day: the rules' refusal.
        return problem(422, detail, title=InvalidInput.title, errors=errors)
    return problem(400, detail, title="Invalid request", errors=errors)


# The decoder's words for a body that is not JSON, as a person would say them.
_NOT_JSON = (
    ("Input data was truncated", "the body is not valid JSON: it ends too early"),
    ("JSON is malformed: ", "the body is not valid JSON: "),
)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    headers = dict(exc.headers or {})
    if exc.status_code == 429 and "Retry-After" not in headers and "RateLimit-Reset" in headers:
        # Litestar's limiter says when the window resets; clients read Retry-After.
        headers["Retry-After"] = headers["RateLimit-Reset"]
    detail = str(exc.detail)
    for said, meant in _NOT_JSON:
        if detail.startswith(said):
            detail = meant + detail.removeprefix(said)
    if exc.status_code == 400 and detail.startswith("the body is not valid JSON"):
        return problem(400, detail, title="Invalid request", errors=[FieldError("body", detail)])
    return problem(exc.status_code, detail, headers=headers or None)


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[dict[str, Any]]:
    # msgspec gives up on pathologically nested JSON with RecursionError.
    log.warning("refused a too deeply nested body on %s %s", request.method, request.url.path)
    return problem(400, "the request body is nested too deeply", title="Invalid request")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if connection_lost(exc):
        # The database went away under the request (a restart, a failover); nothing
        # of it was kept, so the client's retry with the same id is safe.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return problem(
            503,
            "the database is not answering; try again in a few seconds",
            title="Service Unavailable",
            headers={"Retry-After": "5"},
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Something went wrong on our side; it has been logged.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain,
    ValidationException: _validation,
    HTTPException: _http,
    RecursionError: _too_deep,
    Exception: _unexpected,
}
