"""JSON bodies read as the OpenAPI document states them. JSON Schema counts 2000.0 a
whole number; msgspec's strict rules do not. A client that sends what the schema
admits is never refused for it, whether Litestar decodes the body or a handler that
also takes CSV reads it itself."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


def whole_numbers(value: Any) -> Any:
    """A decoded JSON value with its whole-number floats (2000.0) made integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    return value


def decode_as_schema_reads(body: bytes, body_type: type[T]) -> T:
    """Strictly, then (on a validation error) once more with whole-number floats as
    integers; raises msgspec's ValidationError or DecodeError as decoding does."""
    try:
        return msgspec.json.decode(body, type=body_type)
    except msgspec.ValidationError:
        return msgspec.convert(whole_numbers(msgspec.json.decode(body)), body_type)
