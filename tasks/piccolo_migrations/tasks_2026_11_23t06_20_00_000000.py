from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-23T06:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "PostgreSQL: a new task's change_seq by column default, not a row trigger"

# A column default costs nothing per row where a plpgsql trigger costs a function
# call per row, and the daily run and every receipt batch insert tasks by the
# thousand. Updates keep the trigger (it also records the previous assignee).
FORWARD = (
    "ALTER TABLE task ALTER COLUMN change_seq SET DEFAULT pg_current_xact_id()::text::bigint",
    "DROP TRIGGER task_change ON task",
    "CREATE TRIGGER task_change BEFORE UPDATE ON task"
    " FOR EACH ROW EXECUTE FUNCTION tiantian_task_change()",
)
BACKWARD = (
    "DROP TRIGGER task_change ON task",
    "CREATE TRIGGER task_change BEFORE INSERT OR UPDATE ON task"
    " FOR EACH ROW EXECUTE FUNCTION tiantian_task_change()",
    "ALTER TABLE task ALTER COLUMN change_seq SET DEFAULT 0",
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def forward():
        if isinstance(Table._meta.db, PostgresEngine):
            for statement in FORWARD:
                await Table.raw(statement)

    async def backward():
        if isinstance(Table._meta.db, PostgresEngine):
            for statement in BACKWARD:
                await Table.raw(statement)

    manager.add_raw(forward)
    manager.add_raw_backwards(backward)
    return manager
