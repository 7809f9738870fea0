from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-30T01:41:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "PostgreSQL: notify that advisors or stores changed, for the kept league tables"

# Who is in a region or a store, who is active and a store's region decide league
# tables; one notification per statement that changes advisors or stores (rare:
# HQ's registry) lets API processes drop the tables they rank.
CREATE = (
    """
    CREATE FUNCTION tiantian_notify_registry_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('tiantian_registry_changes', TG_TABLE_NAME);
        RETURN NULL;
    END $$
    """,
    *(
        f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION tiantian_notify_registry_change()"
        for table in ("advisor", "store")
    ),
)
UNDO = (
    "DROP TRIGGER advisor_changed ON advisor",
    "DROP TRIGGER store_changed ON store",
    "DROP FUNCTION tiantian_notify_registry_change()",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="members", description=DESCRIPTION)

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
