"""What the tasks domain tells others, inside the event's own transaction: tasks
made for or handed to an advisor (urgent kinds are pushed at once), and tasks whose
done or converted state may have changed (the score ledger reconciles them)."""

from __future__ import annotations

from msgspec import Struct


class TaskAssigned(Struct, frozen=True):
    task_id: int
    kind: str
    assignee: int
    reason: str
    urgent: bool  # the playbook marks the kind urgent: its advisor hears of it at once


class TaskSettled(Struct, frozen=True):
    """A task was done, converted, or undone (a do-not-contact request cancelling a
    call made after it). Listeners read its final state when the transaction ends."""

    task_id: int
