import json

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-29T00:54:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "playbook kinds points_expiring and tier_up"
KINDS = ("points_expiring", "tier_up")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tasks", description=DESCRIPTION)

    async def create():
        from tasks.playbook import DEFAULT_RULES

        for kind in KINDS:
            due, expire, priority, script, params = DEFAULT_RULES[kind]
            await Table.raw(
                "INSERT INTO playbook_rule (kind, enabled, due_offset_days, expire_offset_days,"
                " priority, script, params, updated_at)"
                " VALUES ({}, true, {}, {}, {}, {}, {}, CURRENT_TIMESTAMP)"
                " ON CONFLICT (kind) DO NOTHING",
                kind, due, expire, priority, script, json.dumps(params, ensure_ascii=False),
            )

    async def drop():
        for kind in KINDS:
            await Table.raw("DELETE FROM playbook_rule WHERE kind = {}", kind)

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
