from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T03:23:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "O2O orders: one per channel and id; the store's queue; the overdue sweep"

CREATE = (
    # The retry key: a channel's order id names one order.
    "CREATE UNIQUE INDEX o2o_order_channel_order ON o2o_order (channel, order_id)",
    # A store's orders by status (the advisor's list, the owner's page).
    "CREATE INDEX o2o_order_store_status ON o2o_order (store, status, placed_at)",
    # The every-minute sweep: orders waiting on a store (or on none) by when.
    "CREATE INDEX o2o_order_waiting ON o2o_order (status, routed_at)"
    " WHERE status IN ('routed', 'unrouted')",
    # HQ's figures by the month an order was placed.
    "CREATE INDEX o2o_order_placed ON o2o_order (placed_at)",
)
UNDO = (
    "DROP INDEX o2o_order_placed",
    "DROP INDEX o2o_order_waiting",
    "DROP INDEX o2o_order_store_status",
    "DROP INDEX o2o_order_channel_order",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="orders", description=DESCRIPTION)

    async def create():
        for statement in CREATE:
            await Table.raw(statement)

    async def undo():
        for statement in UNDO:
            await Table.raw(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(undo)
    return manager
