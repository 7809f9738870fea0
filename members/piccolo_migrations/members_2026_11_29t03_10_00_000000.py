from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-29T03:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "member search: a store's members by the phone's last four digits or a name's start"

# An advisor finds the member who walks in or calls back by the last four digits of
# the phone (substr(phone, 8, 4): every phone is 11 digits) or by the start of the
# name, within the store: both are a few rows off an index, however large the chain.
# PostgreSQL compares names byte-wise (COLLATE "C") so that a prefix is a range of
# the index whatever the database's collation; SQLite's default is already so.
CREATE_BOTH = "CREATE INDEX member_store_phone_tail ON member (home_store, substr(phone, 8, 4))"
CREATE_NAME = {
    True: 'CREATE INDEX member_store_name ON member (home_store, (name COLLATE "C"), id)',
    False: "CREATE INDEX member_store_name ON member (home_store, name, id)",
}
UNDO = ("DROP INDEX member_store_name", "DROP INDEX member_store_phone_tail")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="members", description=DESCRIPTION)

    async def create():
        postgres = isinstance(Table._meta.db, PostgresEngine)
        await Table.raw(CREATE_BOTH)
        await Table.raw(CREATE_NAME[postgres])

    async def undo():
        for statement in UNDO:
            await Table.raw(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(undo)
    return manager
