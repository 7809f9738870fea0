"""The trail as the API answers it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from msgspec import Struct


class AuditEntryOut(Struct):
    at: datetime
    who: str
    entity: str
    key: str
    action: str
    before: Any
    after: Any


class AuditOut(Struct):
    entries: list[AuditEntryOut]
    # Pass it back as ``after_id`` for the next page; null on the last one.
    next_after_id: int | None = None
