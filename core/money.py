"""Money and ratios, exactly: amounts are integer fen inside and ``Decimal`` yuan at
the edges; ratios are four-place decimal strings; a request's body is remembered by
a hash, so a retry with the same id and body gets the first answer."""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec

from core.errors import InvalidInput

FEN = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000.00")  # yuan: a line, a rate or a value beyond is a typo


def to_fen(amount: Decimal, field_name: str, maximum: Decimal = MAX_AMOUNT) -> int:
    """Yuan as sent (``"259.00"``) to integer fen; anything not exact to the fen,
    negative or beyond ``maximum`` is a field error."""
    if not amount.is_finite():
        raise InvalidInput.on(field_name, 'must be a number of yuan such as "259.00"')
    if amount < 0:
        raise InvalidInput.on(field_name, "must not be negative")
    if amount > maximum:
        raise InvalidInput.on(field_name, f"must not exceed {maximum} yuan")
    if amount != amount.quantize(FEN):
        raise InvalidInput.on(field_name, "must be exact to the fen (at most 2 decimal places)")
    return int(amount * 100)


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(FEN)


def yuan_text(fen: int) -> str:
    return str(fen_to_yuan(fen))


def request_hash(*parts: Any) -> str:
    """What a request asked for, to tell a retry from a different request."""
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


def share(part: int, whole: int) -> str | None:
    """A ratio to four places, half-up; None when there is nothing to divide."""
    if whole == 0:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_UP))
