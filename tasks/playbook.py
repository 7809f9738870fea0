"""The playbook as data: each kind's default offsets, priority and script (话术).
HQ edits the copy in the database; these are what a new deployment starts with."""

from __future__ import annotations

from typing import Any, Final

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
}
