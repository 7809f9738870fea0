from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T00:27:20:000000"
VERSION = "1.38.0"
DESCRIPTION = "one target per month and subject"

INDEXES = ("CREATE UNIQUE INDEX target_key ON target (month, subject, subject_id)",)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="incentives", description=DESCRIPTION)

    async def create():
        for statement in INDEXES:
            await Table.raw(statement)

    async def drop():
        await Table.raw("DROP INDEX target_key")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
