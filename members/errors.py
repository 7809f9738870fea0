"""Errors the domain raises; ``advisor_api`` turns them into problem details."""

from __future__ import annotations

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
