"""Errors the domain raises; ``advisor_api`` turns them into problem details."""

from __future__ import annotations

import re
from typing import Any

import msgspec


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class DomainError(Exception):
    title = "Request failed"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(DomainError):
    """The request is well formed but its content is not acceptable (422)."""

    title = "Invalid input"

    @classmethod
    def on(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class Conflict(DomainError):
    """The request contradicts what is already recorded (409)."""

    title = "Conflict"


class Malformed(DomainError):
    """The body does not match its schema (400): a body the handler decodes itself."""

    title = "Invalid request"

    @classmethod
    def on(cls, field: str, message: str) -> Malformed:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class Forbidden(DomainError):
    """Signed in, but this is not theirs to see (403)."""

    title = "Forbidden"


class NotFound(DomainError):
    """Unknown, or not the caller's to see (404)."""

    title = "Not found"


_TYPES = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a time with its offset (2026-11-23T10:15:00+08:00)",
    "decimal": "a decimal string",
}
_RULES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^Object missing required field `[^`]+`$"), lambda m: "is required"),
    (re.compile(r"^Object contains unknown field `([^`]+)`$"), lambda m: "is not a field here"),
    (
        re.compile(r"^Expected `(\w+)` of length >= (\d+)$"),
        lambda m: (
            f"must be at least {m[2]} characters" if m[1] == "str" else f"needs {m[2]}+ items"
        ),
    ),
    (
        re.compile(r"^Expected `(\w+)` of length <= (\d+)$"),
        lambda m: (
            f"must be at most {m[2]} characters" if m[1] == "str" else f"takes at most {m[2]} items"
        ),
    ),
    (re.compile(r"^Expected `\w+` >= (-?[\d.]+)$"), lambda m: f"must be at least {m[1]}"),
    (re.compile(r"^Expected `\w+` <= (-?[\d.]+)$"), lambda m: f"must be at most {m[1]}"),
    (re.compile(r"^Expected `str` matching regex .*$"), lambda m: "is not in the expected form"),
    (
        re.compile(r"^Expected `([^`]+)`, got `(\w+)`$"),
        lambda m: f"expected {_kinds(m[1])}, got {_TYPES.get(m[2], m[2])}",
    ),
    (
        re.compile(r"^Invalid enum value (.*)$"),
        lambda m: f"{m[1]} is not one of the allowed values",
    ),
]


_CALENDAR = re.compile(r"^Invalid RFC3339 encoded (date|datetime|time)$")


def is_calendar_error(message: str) -> bool:
    """A date or a time that does not parse: the schema states dates by their format,
    which it does not enforce, so this is the business rules' refusal (422)."""
    return bool(_CALENDAR.match(message)) or message.startswith("is not a real")


def _kinds(alternatives: str) -> str:
    return " or ".join(_TYPES.get(t.strip(), t.strip()) for t in alternatives.split("|"))


def human(message: str) -> str:
    """A schema failure as a person reads it: "must be at most 64 characters", never
    a repr or a regular expression."""
    for pattern, say in _RULES:
        found = pattern.match(message)
        if found:
            return str(say(found))
    return message.replace("`", "")


_MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")


def field_error(path: str, message: str) -> FieldError:
    """A field error from a schema failure at ``path`` (``lines[0]``, or empty for the
    whole body); a missing field is named itself rather than its parent object."""
    missing = _MISSING_FIELD.match(message)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    return FieldError(path or "body", human(message))


def msgspec_field_error(exc: Exception) -> FieldError:
    """From a ``msgspec.ValidationError`` message: "Expected … - at `$.lines[0].sku`"."""
    message, _, where = str(exc).partition(" - at `$")
    return field_error(where.rstrip("`").lstrip("."), message)
