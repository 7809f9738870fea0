"""Domain events, told inside the transaction of what caused them.

A domain publishes typed events (msgspec Structs, in its own ``events.py``) carrying
what a listener needs, so that no listener re-reads what it was told. Which listener
hears which event, and in what order, is one table that ``advisor_api.wiring`` hands
to ``bus.configure`` once, for the app and the command line alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

E = TypeVar("E")
Listener = Callable[[list[Any]], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[type, tuple[Listener, ...]] = {}

    def configure(self, table: Mapping[type, Sequence[Listener]]) -> None:
        """Replace the whole table: each event type's listeners, in the order they run."""
        self._listeners = {kind: tuple(listeners) for kind, listeners in table.items()}

    def listeners(self, kind: type) -> tuple[Listener, ...]:
        return self._listeners.get(kind, ())

    async def publish(self, events: Sequence[E]) -> None:
        """Tell every listener of the events' type, in order; events of one call are
        all of one type (a batch: one receipt or five hundred)."""
        if not events:
            return
        batch = list(events)
        for listener in self._listeners.get(type(batch[0]), ()):
            await listener(batch)


bus = EventBus()
