"""The OpenAPI document made exact: every operation's problem answers, and every
body's schema as msgspec itself validates it.


Each operation's problems are the general ones its shape implies (400 for anything
with parameters or a body, 401 and 403 for a signed-in role, 401 for a till's key,
429 where a limiter stands) and the ones its handler names in ``opt["problems"]``
(404, 409, 422 from the domain). ``document_problems`` writes them all onto the
handlers before the document is built, each as ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from litestar import Litestar, Request

# The plugin that builds the document; the one way to reach the document it caches.
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from msgspec import Struct

from core.errors import InvalidInput, is_calendar_error, msgspec_field_error
from core.jsonbody import whole_numbers

PROBLEM_JSON = "application/problem+json"

DESCRIPTIONS = {
    400: "The request does not match its schema (the problem names each field)",
    401: "No credentials, or credentials this service does not know",
    403: "Signed in, but this is not for your role",
    404: "Not found, or not yours to see",
    409: "Conflicts with what is already recorded (an id reused for another body, …)",
    422: "Well formed, but the business rules refuse it (the problem names the field)",
    413: "The body is larger than the server takes (10 MB)",
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
    if "data" in handler.parsed_fn_signature.parameters:
        found.add(413)
    if handler.resolve_guards():
        found |= {401, 403}
    if handler.resolve_security():
        found.add(401)
    return found


def document_problems(app: Litestar) -> None:
    """Give every operation in the document its problem responses, and mark the ones
    anyone may call (health, sign-in) as needing no credentials: the bearer token is
    the document's default."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue
            statuses = _general(handler) | set(handler.opt.get("problems", ()))
            handler.responses = {**problem_responses(*statuses), **(handler.responses or {})}
            if replayed := handler.opt.get("replay"):
                # A retry with the same client id and body gets the first answer, as 200.
                handler.responses[200] = ResponseSpec(
                    data_container=replayed,
                    description="The same request again (same id, same body): the first answer",
                    generate_examples=False,
                )
            if not handler.resolve_guards() and not handler.resolve_security():
                # An empty requirement: anonymous callers are welcome.
                handler._resolved_security = [{}]


# --- bodies as msgspec validates them ------------------------------------------------


def _structs(annotation: Any, found: set[type[Struct]]) -> None:
    """Every msgspec Struct an annotation names, however deep (lists, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, Struct):
        found.add(annotation)
    for arg in get_args(annotation):
        _structs(arg, found)


def state_schemas_exactly(app: Litestar) -> None:
    """Replace the document's schema of every Struct a handler takes or answers with
    the one msgspec writes for it. Litestar's drops constraints inside unions and
    nested lists and says nothing of forbidden unknown fields; msgspec's states what
    the server enforces, so a client built from the document sends what is accepted."""
    structs: set[type[Struct]] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue
            signature = handler.parsed_fn_signature
            if "data" in signature.parameters:
                _structs(signature.parameters["data"].annotation, structs)
            _structs(signature.return_type.annotation, structs)
            for body in handler.opt.get("bodies", {}).values():
                _structs(body, structs)
    _, exact = msgspec.json.schema_components(
        sorted(structs, key=lambda t: t.__name__), ref_template="#/components/schemas/{name}"
    )
    plugin = app.plugins.get(OpenAPIPlugin)
    document = plugin.provide_openapi_schema()
    document.setdefault("components", {}).setdefault("schemas", {}).update(exact)
    _state_raw_bodies(app, document)


def _state_raw_bodies(app: Litestar, document: dict[str, Any]) -> None:
    """A handler that reads its body itself, in more than one media type (JSON or a
    CSV upload), names them in ``opt["bodies"]``: the document states each."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            opt = getattr(handler, "opt", {})
            if opt.get("csv"):
                # JSON by default; CSV for Excel when Accept asks for text/csv.
                for method in handler.http_methods:
                    answer = document["paths"][route.path_format][method.lower()]["responses"]
                    answer["200"].setdefault("content", {})["text/csv"] = {
                        "schema": {"type": "string"}
                    }
            bodies = opt.get("bodies")
            if not bodies:
                continue
            content = {
                media: {"schema": {"type": "string"}}
                if body is str
                else {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}
                for media, body in bodies.items()
            }
            for method in handler.http_methods:
                operation = document["paths"][route.path_format][method.lower()]
                operation["requestBody"] = {"required": True, "content": content}


# --- bodies read as strictly as the schema states them -------------------------------

_strict_types: dict[int, Any] = {}


def _json_body_type(handler: HTTPRouteHandler) -> Any:
    key = id(handler)
    if key not in _strict_types:
        data = handler.parsed_fn_signature.parameters.get("data")
        kwarg = data.kwarg_definition if data is not None else None
        json_body = data is not None and (
            kwarg is None or getattr(kwarg, "media_type", None) in (None, "application/json")
        )
        _strict_types[key] = data.annotation if json_body and data is not None else None
    return _strict_types[key]


async def strict_bodies(request: Request[Any, Any, Any]) -> None:
    """Decode a JSON body against its Struct with msgspec's strict rules before the
    handler sees it. Litestar converts bodies leniently (0 for false, "1" for 1), which
    the schema does not promise; a client that sends what the schema says is never
    refused, and one that sends something else is told which field."""
    handler = request.scope.get("route_handler")
    if not isinstance(handler, HTTPRouteHandler) or request.method in ("GET", "DELETE"):
        return
    body_type = _json_body_type(handler)
    if body_type is None:
        return
    body = await request.body()
    if not body:
        return  # Litestar says "a JSON body is required"
    try:
        msgspec.json.decode(body, type=body_type)
    except msgspec.ValidationError:
        _check_as_json_schema_reads(body, body_type)
    except msgspec.DecodeError:
        return  # not JSON at all: Litestar's own decoding says so


def _check_as_json_schema_reads(body: bytes, body_type: Any) -> None:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return  # not JSON after all (a value, then more): Litestar's decoding says so
    try:
        msgspec.convert(whole_numbers(value), body_type)
    except msgspec.ValidationError as exc:
        error = msgspec_field_error(exc)
        if is_calendar_error(error.message):
            # The shape of a date, but no such day (2026-02-30): the rules' refusal.
            raise InvalidInput.on(error.field, error.message) from None
        raise ValidationException(
            error.message,
            extra=[{"key": error.field, "message": error.message, "source": "body"}],
        ) from None
