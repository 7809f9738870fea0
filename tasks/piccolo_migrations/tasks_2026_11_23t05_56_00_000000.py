from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-23T05:56:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "PostgreSQL: notify which advisors' tasks changed, for the list cache"

# One notification per statement, naming the advisors whose tasks it touched (or
# '*' when a daily run touches too many to name), so API processes can drop the
# cached lists of exactly those advisors.
CREATE = (
    """
    CREATE FUNCTION tiantian_notify_task_change() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE advisors text;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT string_agg(DISTINCT assignee::text, ',') INTO advisors
            FROM new_rows WHERE assignee IS NOT NULL;
        ELSE
            SELECT string_agg(DISTINCT a::text, ',') INTO advisors FROM (
                SELECT assignee AS a FROM new_rows UNION SELECT assignee FROM old_rows
            ) changed WHERE a IS NOT NULL;
        END IF;
        IF advisors IS NOT NULL THEN
            IF length(advisors) > 7000 THEN
                advisors := '*';
            END IF;
            PERFORM pg_notify('tiantian_task_changes', advisors);
        END IF;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER task_inserted AFTER INSERT ON task REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION tiantian_notify_task_change()",
    "CREATE TRIGGER task_updated AFTER UPDATE ON task"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION tiantian_notify_task_change()",
)
UNDO = (
    "DROP TRIGGER task_inserted ON task",
    "DROP TRIGGER task_updated ON task",
    "DROP FUNCTION tiantian_notify_task_change()",
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def create():
        if isinstance(Table._meta.db, PostgresEngine):
            for statement in CREATE:
                await Table.raw(statement)

    async def undo():
        if isinstance(Table._meta.db, PostgresEngine):
            for statement in UNDO:
                await Table.raw(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(undo)
    return manager
