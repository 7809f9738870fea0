"""Devices as the API takes and shows them: a token is never shown back whole."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

# A device token: printable ASCII without "/", which could never travel in the path
# that removes it.
DEVICE_PATTERN = r"^[\x21-\x2e\x30-\x7e]+$"


class DeviceIn(Struct, forbid_unknown_fields=True):
    token: Annotated[str, Meta(min_length=1, max_length=1024, pattern=DEVICE_PATTERN)]
    platform: Literal["android", "ios", "web"]


class DeviceOut(Struct):
    token: str  # masked: the first six and last four characters
    platform: str
