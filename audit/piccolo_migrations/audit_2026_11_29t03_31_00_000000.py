from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-29T03:31:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit_entry is append-only: updates and deletes are refused"

# The trail is evidence of who changed what people are paid by: not even the service
# may edit or remove a row, so a bug (or a hand) cannot rewrite it quietly.
POSTGRES = (
    "CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$",
    "CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry"
    " FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
    "CREATE INDEX audit_entry_entity_at ON audit_entry (entity, at)",
)
SQLITE = (
    "CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry"
    " BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END",
    "CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry"
    " BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END",
    "CREATE INDEX audit_entry_entity_at ON audit_entry (entity, at)",
)
UNDO_POSTGRES = (
    "DROP INDEX audit_entry_entity_at",
    "DROP TRIGGER audit_entry_append_only ON audit_entry",
    "DROP FUNCTION audit_entry_append_only()",
)
UNDO_SQLITE = (
    "DROP INDEX audit_entry_entity_at",
    "DROP TRIGGER audit_entry_no_update",
    "DROP TRIGGER audit_entry_no_delete",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="audit", description=DESCRIPTION)
    postgres = isinstance(Table._meta.db, PostgresEngine)

    async def create():
        for statement in POSTGRES if postgres else SQLITE:
            await Table.raw(statement)

    async def undo():
        for statement in UNDO_POSTGRES if postgres else UNDO_SQLITE:
            await Table.raw(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(undo)
    return manager
