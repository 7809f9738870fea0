from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T07:58:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox indexes: due rows, one pending summary per advisor, deliveries"

INDEXES = (
    # The dispatcher's claim: due pending rows, oldest first.
    "CREATE INDEX push_outbox_due ON push_outbox (next_attempt_at, id)"
    " WHERE status = 'pending'",
    # Folding over the hourly limit adds to the advisor's one pending summary.
    "CREATE UNIQUE INDEX push_outbox_one_summary ON push_outbox (advisor)"
    " WHERE kind = 'summary' AND status = 'pending'",
    "CREATE INDEX push_outbox_sent ON push_outbox (advisor, sent_at) WHERE status = 'sent'",
    "CREATE UNIQUE INDEX push_delivery_key ON push_delivery (outbox, token)",
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="notifications", description=DESCRIPTION
    )

    async def create():
        for statement in INDEXES:
            await Table.raw(statement)

    async def drop():
        for statement in INDEXES:
            await Table.raw("DROP INDEX " + statement.split(" INDEX ", 1)[1].split(" ", 1)[0])

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
