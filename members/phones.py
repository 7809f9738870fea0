"""Mainland China mobile numbers: how members and people are identified."""

from __future__ import annotations

import re
import unicodedata

from core.errors import InvalidInput

_SEPARATORS = re.compile(r"[\s\-().]")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str) -> str:
    """``+86 138-0013-8000``, ``8613800138000`` and ``13800138000`` all become
    ``13800138000``; anything that is not a mainland mobile is refused."""
    # Chinese input methods type full-width digits (１３８…): the same phone.
    digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _MOBILE.fullmatch(digits):
        raise InvalidPhone("not a mainland China mobile number (11 digits starting with 1)")
    return digits


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def phone_or_error(raw: str, field_name: str) -> str:
    """The normalised phone, or a field error naming ``field_name``."""
    try:
        return normalise_phone(raw)
    except InvalidPhone as exc:
        raise InvalidInput.on(field_name, str(exc)) from None
