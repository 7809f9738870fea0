"""Which domain listens to which: the one place the domains are joined up."""

from __future__ import annotations

from datetime import timedelta

from advisor_api.settings import PushSettings
from core.events import bus
from incentives import ledger
from incentives.events import MonthClosed
from members.events import (
    AdvisorLeft,
    MemberImported,
    MemberJoined,
    PurchaseImported,
    PurchaseRecorded,
    PurchaseReturned,
    TierReached,
)
from notifications import services as pushes
from notifications.dispatch import Dispatcher
from notifications.senders import FcmSender, LogSender, PushSender
from orders.events import OrderAccepted, OrderDelivered, OrderMovedAway, OrderRouted
from tasks import assignment, conversion, deliveries, generation, points_tasks
from tasks.events import TaskAssigned, TaskSettled


def wire_domains(conversion_days: int = 7) -> None:
    """Who hears which event, in the order they run: the one table of it. The app
    factory and the command line call this once at start-up; calling it again
    replaces the table, it never adds a listener twice."""
    conversion.Conversion.window = timedelta(days=conversion_days)
    bus.configure(
        {
            MemberJoined: [generation.on_members_joined, ledger.credit_new_members],
            # The playbook first, then conversion: the score ledger, last, sees the
            # purchase's conversions too.
            PurchaseRecorded: [
                generation.on_purchases,
                conversion.convert,
                ledger.credit_purchases,
            ],
            # Tasks first: a conversion the return undoes settles its task, and the
            # ledger's flush before commit reconciles that fact with the points'.
            PurchaseReturned: [
                points_tasks.on_purchases_returned,
                ledger.reverse_returned_points,
            ],
            TierReached: [points_tasks.on_tiers_reached],
            # History imported with --score: the score ledger alone, no tasks for the past.
            MemberImported: [ledger.credit_new_members],
            PurchaseImported: [ledger.credit_purchases],
            # The members were handed on already (members.registry); their tasks follow.
            AdvisorLeft: [assignment.on_advisors_left],
            # O2O orders: the store's delivery task follows the order.
            OrderRouted: [deliveries.on_orders_routed],
            OrderMovedAway: [deliveries.on_orders_moved_away],
            OrderAccepted: [deliveries.on_orders_accepted],
            OrderDelivered: [deliveries.on_orders_delivered],
            TaskAssigned: [pushes.on_tasks_assigned],
            TaskSettled: [ledger.credit_tasks],
            MonthClosed: [pushes.on_month_closed],
        }
    )


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
