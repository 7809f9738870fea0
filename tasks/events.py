"""What the tasks domain tells others, inside the event's own transaction: which
tasks were done, converted, or undone (a member's do-not-contact request cancelling
calls made after it). ``advisor_api`` wires the listeners (the score ledger)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

SettledListener = Callable[[list[int]], Awaitable[None]]

settled_listeners: list[SettledListener] = []


def listen(on_settled: SettledListener) -> None:
    if on_settled not in settled_listeners:
        settled_listeners.append(on_settled)


async def tasks_settled(task_ids: list[int]) -> None:
    """Tasks whose done or converted state may have changed."""
    if task_ids:
        ids = sorted(set(task_ids))
        for listener in settled_listeners:
            await listener(ids)
