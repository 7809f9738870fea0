from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T05:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partial indexes for the purchase path: open reactivate and replenish, orphans"

# Partial indexes hold only the rows each hot query looks for, so a purchase's
# "cancel the open reactivate" and "supersede the older replenish" touch a handful
# of entries, and inserting any other task does not maintain them.
CREATE = (
    "CREATE INDEX task_open_reactivate ON task (member)"
    " WHERE kind = 'reactivate' AND status = 'open'",
    "CREATE INDEX task_open_replenish ON task (member, topic, anchor_on)"
    " WHERE kind = 'replenish' AND status = 'open'",
    "CREATE INDEX task_unassigned ON task (store) WHERE status = 'open' AND assignee IS NULL",
    "CREATE INDEX task_open_expires ON task (expires_on) WHERE status = 'open'",
    "DROP INDEX task_store_status",
    "DROP INDEX task_status_expires",
)
UNDO = (
    "DROP INDEX task_open_reactivate",
    "DROP INDEX task_open_replenish",
    "DROP INDEX task_unassigned",
    "DROP INDEX task_open_expires",
    "CREATE INDEX task_store_status ON task (store, status)",
    "CREATE INDEX task_status_expires ON task (status, expires_on)",
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def create():
        for statement in CREATE:
            await Table.raw(statement)

    async def undo():
        for statement in UNDO:
            await Table.raw(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(undo)
    return manager
