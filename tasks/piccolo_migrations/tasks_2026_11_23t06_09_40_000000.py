from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-23T06:09:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "triggers keeping task.change_seq and task.previous_assignee"

# PostgreSQL: change_seq is the writing transaction's id. A reader only hands out
# positions below the oldest transaction still running, so a change that commits
# late is never skipped by a cursor that has moved past it.
POSTGRES = (
    """
    CREATE FUNCTION tiantian_task_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.change_seq := pg_current_xact_id()::text::bigint;
        IF TG_OP = 'UPDATE' AND NEW.assignee IS DISTINCT FROM OLD.assignee THEN
            NEW.previous_assignee := OLD.assignee;
        END IF;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER task_change BEFORE INSERT OR UPDATE ON task"
    " FOR EACH ROW EXECUTE FUNCTION tiantian_task_change()",
)
# SQLite has one writer at a time, so a counter bumped in the writing transaction
# is already in commit order.
SQLITE = (
    "CREATE TABLE task_change_counter (n INTEGER NOT NULL)",
    "INSERT INTO task_change_counter (n) VALUES (0)",
    """
    CREATE TRIGGER task_change_insert AFTER INSERT ON task BEGIN
        UPDATE task_change_counter SET n = n + 1;
        UPDATE task SET change_seq = (SELECT n FROM task_change_counter) WHERE id = NEW.id;
    END
    """,
    """
    CREATE TRIGGER task_change_update AFTER UPDATE ON task
    WHEN NEW.change_seq IS OLD.change_seq BEGIN
        UPDATE task_change_counter SET n = n + 1;
        UPDATE task SET change_seq = (SELECT n FROM task_change_counter),
            previous_assignee = CASE WHEN NEW.assignee IS NOT OLD.assignee
                THEN OLD.assignee ELSE OLD.previous_assignee END
        WHERE id = NEW.id;
    END
    """,
)
INDEXES = (
    "CREATE INDEX task_assignee_change ON task (assignee, change_seq, id)",
    "CREATE INDEX task_previous_assignee_change ON task (previous_assignee, change_seq, id)",
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def create():
        postgres = isinstance(Table._meta.db, PostgresEngine)
        for statement in (POSTGRES if postgres else SQLITE) + INDEXES:
            await Table.raw(statement)

    async def drop():
        postgres = isinstance(Table._meta.db, PostgresEngine)
        statements = (
            ("DROP TRIGGER task_change ON task", "DROP FUNCTION tiantian_task_change()")
            if postgres
            else (
                "DROP TRIGGER task_change_insert",
                "DROP TRIGGER task_change_update",
                "DROP TABLE task_change_counter",
            )
        )
        for statement in statements + (
            "DROP INDEX task_assignee_change",
            "DROP INDEX task_previous_assignee_change",
        ):
            await Table.raw(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
