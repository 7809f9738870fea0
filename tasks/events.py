"""What the tasks domain tells others, inside the event's own transaction: which
tasks were done, converted, or undone (a member's do-not-contact request cancelling
calls made after it), and which were made for or handed to an advisor.
``advisor_api`` wires the listeners (the score ledger, the push outbox)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

SettledListener = Callable[[list[int]], Awaitable[None]]
# Rows of tasks made or handed to an advisor: ``id``, ``kind``, ``assignee``, ``reason``.
AssignedListener = Callable[[list[dict[str, Any]]], Awaitable[None]]

settled_listeners: list[SettledListener] = []
assigned_listeners: list[AssignedListener] = []


def listen(
    on_settled: SettledListener | None = None, on_assigned: AssignedListener | None = None
) -> None:
    if on_settled is not None and on_settled not in settled_listeners:
        settled_listeners.append(on_settled)
    if on_assigned is not None and on_assigned not in assigned_listeners:
        assigned_listeners.append(on_assigned)


async def tasks_assigned(tasks: list[dict[str, Any]]) -> None:
    """Tasks made for an advisor, or handed to one (urgent kinds are pushed at once)."""
    tasks = [t for t in tasks if t.get("assignee") is not None]
    if tasks:
        for listener in assigned_listeners:
            await listener(tasks)


async def tasks_settled(task_ids: list[int]) -> None:
    """Tasks whose done or converted state may have changed."""
    if task_ids:
        ids = sorted(set(task_ids))
        for listener in settled_listeners:
            await listener(ids)
