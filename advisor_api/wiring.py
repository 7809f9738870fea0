"""Which domain listens to which: the one place the domains are joined up."""

from __future__ import annotations

from datetime import timedelta

from incentives import services as incentives
from members import events
from tasks import events as task_events
from tasks import outcomes
from tasks import services as tasks


def wire_domains(conversion_days: int = 7) -> None:
    outcomes.Conversion.window = timedelta(days=conversion_days)
    events.listen(
        on_purchases=tasks.on_purchases,
        on_members=tasks.on_members_joined,
        on_advisor_left=tasks.on_advisor_left,
    )
    events.listen(on_purchases=outcomes.convert)
    # After the playbook: the score ledger sees the purchase's conversions too.
    events.listen(
        on_purchases=incentives.credit_purchases, on_members=incentives.credit_new_members
    )
    task_events.listen(incentives.credit_tasks)
