"""What the incentives domain tells others, inside the event's own transaction."""

from __future__ import annotations

from msgspec import Struct


class MonthClosed(Struct, frozen=True):
    """A month's statements were frozen: advisors hear their rank (notifications)."""

    month: str
    previous_month: str
