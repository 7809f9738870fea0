"""What every operation can answer besides success, written into the OpenAPI document.

Each operation's problems are the general ones its shape implies (400 for anything
with parameters or a body, 401 and 403 for a signed-in role, 401 for a till's key,
429 where a limiter stands) and the ones its handler names in ``opt["problems"]``
(404, 409, 422 from the domain). ``document_problems`` writes them all onto the
handlers before the document is built, each as ``application/problem+json``.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from msgspec import Struct

PROBLEM_JSON = "application/problem+json"

DESCRIPTIONS = {
    400: "The request does not match its schema (the problem names each field)",
    401: "No credentials, or credentials this service does not know",
    403: "Signed in, but this is not for your role",
    404: "Not found, or not yours to see",
    409: "Conflicts with what is already recorded (an id reused for another body, …)",
    422: "Well formed, but the business rules refuse it (the problem names the field)",
    429: "Too many attempts: try again after Retry-After seconds",
    503: "Not ready: the database does not answer, or its migrations are behind",
}


class FieldProblem(Struct):
    field: str
    message: str


class Problem(Struct, omit_defaults=True):
    """RFC 9457 problem details."""

    title: str
    status: int
    detail: str
    type: str = "about:blank"
    errors: list[FieldProblem] | None = None


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted(set(statuses))
    }


_INJECTED = {"request", "self", "state", "scope"}


def _general(handler: HTTPRouteHandler) -> set[int]:
    found: set[int] = set()
    injected = _INJECTED | set(handler.resolve_dependencies())
    # Path, query and header parameters and a body can each fail their schema.
    if set(handler.parsed_fn_signature.parameters) - injected:
        found.add(400)
    if handler.resolve_guards():
        found |= {401, 403}
    if handler.resolve_security():
        found.add(401)
    return found


def document_problems(app: Litestar) -> None:
    """Give every operation in the document its problem responses."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue
            statuses = _general(handler) | set(handler.opt.get("problems", ()))
            handler.responses = {**problem_responses(*statuses), **(handler.responses or {})}
