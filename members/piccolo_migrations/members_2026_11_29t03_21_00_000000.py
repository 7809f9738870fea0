from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T03:21:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the nearest-store search: stores taking O2O orders by position"

# A bounding box on latitude (a range) and longitude (filtered in the index) around
# an order's address; only the stores taking orders are in it. Both databases take
# partial indexes.
CREATE = (
    "CREATE INDEX store_o2o_position ON store (latitude, longitude) WHERE o2o",
)
UNDO = ("DROP INDEX store_o2o_position",)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="members", description=DESCRIPTION)

    async def create():
        for statement in CREATE:
            await Table.raw(statement)

    async def undo():
        for statement in UNDO:
            await Table.raw(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(undo)
    return manager
