"""Which domain listens to which: the one place the domains are joined up."""

from __future__ import annotations

from datetime import timedelta

from advisor_api.settings import PushSettings
from incentives import events as incentive_events
from incentives import services as incentives
from members import events
from notifications import services as pushes
from notifications.dispatch import Dispatcher
from notifications.senders import FcmSender, LogSender, PushSender
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
    task_events.listen(on_settled=incentives.credit_tasks, on_assigned=pushes.on_tasks_assigned)
    incentive_events.listen(pushes.on_month_closed)


def build_dispatcher(push: PushSettings) -> Dispatcher:
    """The push dispatcher with the sender the settings name: FCM through
    firebase-admin (Google's, or a stand-in at ``FCM_ENDPOINT``), or the log."""
    sender: PushSender
    if push.backend == "fcm":
        sender = FcmSender(
            push.project_id, push.credentials_path, push.endpoint, push.timeout_seconds
        )
    else:
        sender = LogSender()
    return Dispatcher(sender, per_hour=push.per_hour, lease=timedelta(seconds=push.lease_seconds))
