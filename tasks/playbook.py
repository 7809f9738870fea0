"""The playbook as data: each kind's offsets, priority and script (话术). HQ edits
the copy in the database; ``DEFAULT_RULES`` is what a new deployment starts with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Final

from audit import trail
from core import clock
from core.db import in_write_transaction, is_postgres
from core.errors import InvalidInput
from tasks.tables import PlaybookRule

KINDS: Final = (
    "followup_3d",
    "replenish",
    "stage_up",
    "reactivate",
    "milestone",
    "welcome",
    "campaign",
    "callback",
    "delivery",
    "points_expiring",
    "tier_up",
)

# kind -> (due offset, expiry offset, priority, script, params); offsets in days from
# the kind's anchor (see tables.PlaybookRule).
DEFAULT_RULES: Final[dict[str, tuple[int, int, int, str, dict[str, Any]]]] = {
    "followup_3d": (
        3,
        6,
        3,
        "您好,我是{store}的育儿顾问{advisor}。宝宝这几天喝新买的奶粉还习惯吗?"
        "大便和睡眠怎么样?有任何问题随时找我。",
        {},
    ),
    "replenish": (
        -3,
        7,
        2,
        "您好,按宝宝的用量,家里的{product}快用完了。需要帮您留货或送货上门吗?",
        {},
    ),
    "stage_up": (
        -7,
        14,
        1,
        "宝宝快满{months}个月了,可以准备转{stage}段奶粉。转段建议新旧混合、逐步过渡,"
        "需要我给您讲讲转段方法吗?",
        {},
    ),
    "reactivate": (
        45,
        60,
        4,
        "好久没见到您和宝宝了,最近还好吗?店里有新到的会员活动,积分也可以兑换礼品。",
        {},
    ),
    "milestone": (
        0,
        7,
        5,
        "宝宝满{months}个月啦!这个月龄可以开始添加辅食,比如高铁米粉,需要我推荐吗?",
        {"ages_months": [4]},
    ),
    "welcome": (
        1,
        4,
        3,
        "欢迎加入妈妈会员!我是您的专属育儿顾问{advisor},喂养上有任何问题都可以问我。",
        {},
    ),
    "campaign": (0, 0, 4, "", {}),
    # Asked for by the member ("call me on Friday"): made by an outcome, due that day.
    "callback": (0, 3, 2, "您好,上次您说今天方便再联系,我是{store}的育儿顾问{advisor}。", {}),
    # Asked for on a call ("please bring it round"): made by the outcome, and urgent —
    # the advisor's phone hears of it at once (params.urgent marks a kind urgent).
    "delivery": (
        0,
        1,
        1,
        "您好,我是{store}的育儿顾问{advisor},来确认一下送货上门的时间和地址。",
        {"urgent": True},
    ),
    # Made by the daily run for a lot of points lapsing within the points policy's
    # warning days: due at once, open until the lot's last day (offsets unused).
    "points_expiring": (
        0,
        0,
        2,
        "您好,您有一部分会员积分将于{date}过期,过期前到店可以兑换奶粉或用品,"
        "需要我帮您看看能换什么吗?",
        {},
    ),
    "tier_up": (
        0,
        7,
        2,
        "恭喜您升级为{tier}会员!我是{store}的育儿顾问{advisor},"
        "{tier}会员可以享受专属礼遇,下次来店我给您详细介绍。",
        {},
    ),
}


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    enabled: bool
    due_offset_days: int
    expire_offset_days: int
    priority: int
    script: str
    params: dict[str, Any]

    @property
    def urgent(self) -> bool:
        """HQ marks a kind urgent: its advisor's phone hears of each task at once."""
        return bool(self.params.get("urgent"))

    def window(self, anchor: date) -> tuple[date, date]:
        return (
            anchor + timedelta(days=self.due_offset_days),
            anchor + timedelta(days=self.expire_offset_days),
        )

    def anchors_open_on(self, day: date) -> list[date]:
        """Anchors whose task is due on or before ``day`` and not yet expired on it."""
        first = day - timedelta(days=self.expire_offset_days)
        last = day - timedelta(days=self.due_offset_days)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def urgent_kinds() -> str:
    """The kinds HQ marks urgent, as a relation of ``kind`` (``Rule.urgent`` in SQL)."""
    if is_postgres():
        return "(SELECT kind FROM playbook_rule WHERE params->>'urgent' = 'true')"
    return "(SELECT kind FROM playbook_rule WHERE json_extract(params, '$.urgent') = 1)"


async def load_rules() -> dict[str, Rule]:
    rows = await PlaybookRule.select()
    return {
        r["kind"]: Rule(
            kind=r["kind"],
            enabled=bool(r["enabled"]),
            due_offset_days=r["due_offset_days"],
            expire_offset_days=r["expire_offset_days"],
            priority=r["priority"],
            script=r["script"],
            params=r["params"]
            if isinstance(r["params"], dict)
            else json.loads(r["params"] or "{}"),
        )
        for r in rows
    }


async def enabled_rule(kind: str) -> Rule | None:
    rule = (await load_rules()).get(kind)
    return rule if rule is not None and rule.enabled else None


def validate_rule(rule: Rule, index: int) -> None:
    where = f"rules[{index}]"
    if rule.kind not in KINDS:
        raise InvalidInput.on(f"{where}.kind", f"unknown kind; one of {', '.join(KINDS)}")
    if rule.expire_offset_days < rule.due_offset_days:
        raise InvalidInput.on(
            f"{where}.expire_offset_days", "a task cannot expire before it is due"
        )
    if not 1 <= rule.priority <= 9:
        raise InvalidInput.on(f"{where}.priority", "from 1 (most urgent) to 9")
    ages = rule.params.get("ages_months", [])
    if rule.kind == "milestone" and (
        not isinstance(ages, list) or not all(isinstance(a, int) and 0 < a <= 72 for a in ages)
    ):
        raise InvalidInput.on(f"{where}.params.ages_months", "a list of months from 1 to 72")


async def save_rules(rules: Sequence[Rule]) -> None:
    for i, rule in enumerate(rules):
        validate_rule(rule, i)
    kinds = [r.kind for r in rules]
    if len(set(kinds)) != len(kinds):
        raise InvalidInput.on("rules", "each kind at most once")

    async def work() -> None:
        before = await load_rules()
        for rule in rules:
            await PlaybookRule.update(
                {
                    PlaybookRule.enabled: rule.enabled,
                    PlaybookRule.due_offset_days: rule.due_offset_days,
                    PlaybookRule.expire_offset_days: rule.expire_offset_days,
                    PlaybookRule.priority: rule.priority,
                    PlaybookRule.script: rule.script,
                    PlaybookRule.params: json.dumps(rule.params, ensure_ascii=False),
                    PlaybookRule.updated_at: clock.now(),
                }
            ).where(PlaybookRule.kind == rule.kind)
        # One row for the whole edit, naming only the kinds it changed.
        changed = [r for r in rules if r.kind in before and asdict(before[r.kind]) != asdict(r)]
        if changed:
            await trail.record(
                "playbook",
                ",".join(r.kind for r in changed),
                "update",
                {r.kind: asdict(before[r.kind]) for r in changed},
                {r.kind: asdict(r) for r in changed},
            )

    await in_write_transaction(work)
