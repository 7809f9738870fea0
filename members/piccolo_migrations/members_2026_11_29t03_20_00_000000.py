from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Boolean
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-29T03:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stores take O2O orders (o2o)"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="members", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Store",
        tablename="store",
        column_name="o2o",
        db_column_name="o2o",
        column_class_name="Boolean",
        column_class=Boolean,
        params={
            "default": False,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
