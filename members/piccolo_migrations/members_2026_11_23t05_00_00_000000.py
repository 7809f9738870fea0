from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite unique and lookup indexes"

# Plain SQL: SQLite cannot add a constraint to an existing table, and a unique
# index serves ON CONFLICT on both engines alike.
STATEMENTS = (
    "CREATE UNIQUE INDEX purchase_store_receipt ON purchase (store, receipt_id)",
    "CREATE UNIQUE INDEX redemption_store_redemption ON redemption (store, redemption_id)",
    'CREATE UNIQUE INDEX user_store_user_store ON user_store ("user", store)',
    "CREATE INDEX purchase_member_purchased_at ON purchase (member, purchased_at)",
    "CREATE INDEX purchase_store_purchased_on ON purchase (store, purchased_on)",
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="members", description=DESCRIPTION
    )

    async def create_indexes():
        for statement in STATEMENTS:
            await Table.raw(statement)

    async def drop_indexes():
        for statement in STATEMENTS:
            name = statement.split(" INDEX ", 1)[1].split(" ", 1)[0]
            await Table.raw(f"DROP INDEX {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
