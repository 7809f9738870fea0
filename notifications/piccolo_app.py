import os

from piccolo.conf.apps import AppConfig

from notifications import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="notifications",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=[tables.Device, tables.PushOutbox, tables.PushDelivery],
    migration_dependencies=["members.piccolo_app", "incentives.piccolo_app"],
    commands=[],
)
