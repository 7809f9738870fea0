from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-23T06:37:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "previous_assignee: a hand-over through 'unassigned' keeps the advisor it left"

# Handing tasks over clears the assignee and then deals them out; the second update
# must not overwrite the advisor the task left with NULL.
POSTGRES = """
CREATE OR REPLACE FUNCTION tiantian_task_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := pg_current_xact_id()::text::bigint;
    IF TG_OP = 'UPDATE' AND NEW.assignee IS DISTINCT FROM OLD.assignee
            AND OLD.assignee IS NOT NULL THEN
        NEW.previous_assignee := OLD.assignee;
    END IF;
    RETURN NEW;
END $$
"""
SQLITE = (
    "DROP TRIGGER task_change_update",
    """
    CREATE TRIGGER task_change_update AFTER UPDATE ON task
    WHEN NEW.change_seq IS OLD.change_seq BEGIN
        UPDATE task_change_counter SET n = n + 1;
        UPDATE task SET change_seq = (SELECT n FROM task_change_counter),
            previous_assignee = CASE WHEN NEW.assignee IS NOT OLD.assignee
                AND OLD.assignee IS NOT NULL THEN OLD.assignee ELSE OLD.previous_assignee END
        WHERE id = NEW.id;
    END
    """,
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def forward():
        if isinstance(Table._meta.db, PostgresEngine):
            await Table.raw(POSTGRES)
        else:
            for statement in SQLITE:
                await Table.raw(statement)

    manager.add_raw(forward)
    return manager
