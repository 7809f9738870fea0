from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T05:53:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "an advisor's tasks done, by when: the list's done-today count"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def create():
        await Table.raw(
            "CREATE INDEX task_done_by_assignee ON task (assignee, updated_at)"
            " WHERE status = 'done'"
        )

    async def drop():
        await Table.raw("DROP INDEX task_done_by_assignee")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
