"""``/hq/v1``: the playbook and campaigns."""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post, put
from litestar.params import JSONBody

from advisor_api.security import requires_role
from tasks import campaigns, playbook
from tasks.schemas import CampaignIn, CampaignOut, PlaybookIO, RuleIO


def _playbook(rules: dict[str, playbook.Rule]) -> PlaybookIO:
    return PlaybookIO(
        rules=[
            RuleIO(
                kind=r.kind,
                enabled=r.enabled,
                due_offset_days=r.due_offset_days,
                expire_offset_days=r.expire_offset_days,
                priority=r.priority,
                script=r.script,
                params=r.params,
            )
            for r in rules.values()
        ]
    )


class HqPlaybookController(Controller):
    path = "/hq/v1"
    tags = ["HQ"]
    guards = [requires_role("hq")]

    @get("/playbook", summary="The playbook: which events make which follow-ups")
    async def get_playbook(self) -> PlaybookIO:
        return _playbook(await playbook.load_rules())

    @put(
        "/playbook",
        summary="Change rules; kinds not listed stay as they are",
        opt={"problems": (422,)},
    )
    async def put_playbook(self, data: JSONBody[PlaybookIO]) -> PlaybookIO:
        await playbook.save_rules([playbook.Rule(**msgspec.structs.asdict(r)) for r in data.rules])
        return _playbook(await playbook.load_rules())

    @post(
        "/campaigns",
        status_code=201,
        summary="A seasonal campaign over a segment",
        opt={"problems": (422,)},
    )
    async def create_campaign(self, data: JSONBody[CampaignIn]) -> CampaignOut:
        segment = msgspec.to_builtins(data.segment)
        campaign_id, made = await campaigns.create_campaign(
            data.name, data.starts_on, data.ends_on, segment, data.script
        )
        return CampaignOut(
            campaign_id=campaign_id,
            name=data.name,
            starts_on=data.starts_on,
            ends_on=data.ends_on,
            segment=data.segment,
            script=data.script,
            tasks_created=made,
        )
