"""Money and ratios, exactly: amounts are integer fen inside and ``Decimal`` yuan at
the edges; ratios are four-place decimal strings; a request's body is remembered by
a hash, so a retry with the same id and body gets the first answer."""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec

from core.errors import InvalidInput

FEN = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000.00")  # yuan: a line, a rate or a value beyond is a typo

# Money as the API writes it: a decimal string of yuan, exact to the fen. The
# schema says so, so a client (and a generated one) knows "" or "1e3" is no amount.
YUAN_PATTERN = r"^(0|[1-9][0-9]{0,6})([.][0-9]{1,2})?$"
YuanText = Annotated[
    str,
    msgspec.Meta(
        pattern=YUAN_PATTERN,
        max_length=10,
        description='yuan, a decimal string exact to the fen, e.g. "259.00"',
        examples=["259.00"],
    ),
]
# A weight or a rate given to two places (0.1 a point, 20.00 yuan a member).
DecimalText = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(0|[1-9][0-9]{0,6})([.][0-9]{1,2})?$",
        max_length=10,
        description='a decimal string with at most two places, e.g. "0.10"',
        examples=["0.10"],
    ),
]
# A share from 0 to 1, to four places (a completion gate of 0.8).
ShareText = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(0([.][0-9]{1,4})?|1([.]0{1,4})?)$",
        max_length=6,
        description='from 0 to 1, at most four places, e.g. "0.8"',
        examples=["0.8"],
    ),
]


def decimal_of(text: str, field_name: str) -> Decimal:
    """A decimal string the schema admitted, as a ``Decimal``."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput.on(field_name, 'must be a decimal string such as "259.00"') from None
    if text != text.strip() or not value.is_finite():
        raise InvalidInput.on(field_name, 'must be a decimal string such as "259.00"')
    return value


def fen_of(text: str, field_name: str, maximum: Decimal = MAX_AMOUNT) -> int:
    """Yuan as sent (``"259.00"``) to integer fen."""
    return to_fen(decimal_of(text, field_name), field_name, maximum)


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
