import os

from piccolo.conf.apps import AppConfig

from orders import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="orders",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=[
        tables.ChannelKey,
        tables.O2oOrder,
        tables.OrderLine,
        tables.OrderEvent,
    ],
    migration_dependencies=["members.piccolo_app"],
    commands=[],
)
