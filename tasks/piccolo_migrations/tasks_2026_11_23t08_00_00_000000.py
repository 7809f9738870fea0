import json

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T08:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the delivery kind: made by a delivery_requested call, urgent by default"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def create():
        from tasks.playbook import DEFAULT_RULES

        due, expire, priority, script, params = DEFAULT_RULES["delivery"]
        await Table.raw(
            "INSERT INTO playbook_rule (kind, enabled, due_offset_days, expire_offset_days,"
            " priority, script, params, updated_at)"
            " VALUES ('delivery', true, {}, {}, {}, {}, {}, CURRENT_TIMESTAMP)"
            " ON CONFLICT (kind) DO NOTHING",
            due, expire, priority, script, json.dumps(params, ensure_ascii=False),
        )

    async def drop():
        await Table.raw("DELETE FROM playbook_rule WHERE kind = 'delivery'")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
