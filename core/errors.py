"""Errors the domain raises; ``advisor_api`` turns them into problem details."""

from __future__ import annotations

import re

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


class NotFound(DomainError):
    """Unknown, or not the caller's to see (404)."""

    title = "Not found"


_MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")


def field_error(path: str, message: str) -> FieldError:
    """A field error from a schema failure at ``path`` (``lines[0]``, or empty for the
    whole body); a missing field is named itself rather than its parent object."""
    missing = _MISSING_FIELD.match(message)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    return FieldError(path or "body", message)


def msgspec_field_error(exc: Exception) -> FieldError:
    """From a ``msgspec.ValidationError`` message: "Expected … - at `$.lines[0].sku`"."""
    message, _, where = str(exc).partition(" - at `$")
    return field_error(where.rstrip("`").lstrip("."), message)
