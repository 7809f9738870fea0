"""What the incentives domain tells others, inside the event's own transaction:
a month was closed (its ranks are final). ``advisor_api`` wires the listeners."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

ClosedListener = Callable[[str, str], Awaitable[None]]  # (month, the month before)

closed_listeners: list[ClosedListener] = []


def listen(on_month_closed: ClosedListener) -> None:
    if on_month_closed not in closed_listeners:
        closed_listeners.append(on_month_closed)


async def month_closed(month: str, previous_month: str) -> None:
    for listener in closed_listeners:
        await listener(month, previous_month)
