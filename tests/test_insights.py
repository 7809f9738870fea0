"""Insights and targets against a hand-worked month, March 2024.

March 2024 is a month of this module's own: nothing else in the suite writes a
purchase, a member or a task dated before October 2024 (test_summaries' histories
begin then), so even the national figures are this month's alone: every other store
of the run has no member as of then, and no task or receipt in it.

The chain: region RA with stores S1 (advisors a1, a2 and x1, who is inactive) and
S2 (b1, b2); region RB with store S3 (c1, c2). The playbook is the default one:
followup_3d due 3 days after a purchase (expires after 6), replenish due 3 days
before the supply runs out (12 days a can of stage 1, 14 of stage 2, 30 a box of
probiotics; expires 7 days after), stage_up due 7 days before the baby turns six
months (expires 14 days after), reactivate due 45 days after the last purchase
(expires after 60), welcome due the day after joining (expires after 4).

Members before March, registered and with receipts sent on 03-01 (every window of
theirs had lapsed, so none of it makes a task):

    m1  S1/a1  joined 2023-10-01, baby born 2023-09-15 (six months on 03-15), F1 02-05
    m2  S1/a1  joined 2023-10-01, baby born 2023-09-20 (six months on 03-20), F1 02-01
    m4  S1/a2  joined 2023-03-01, probiotics 2023-04-02 (the 12-month window's first day)
    m5  S1/a1  joined 2022-12-01, F1 2023-03-01
    m6  S1/a1  joined 2022-06-01, F1 2023-04-01 (a day before the 12-month window)
    m7  S3/c1  joined 2023-06-01, probiotics 01-20
    m8  S2/b1  joined 2023-11-01, F1 01-10
    m11 S2/b2  joined 2023-06-01, F1 01-02 (the 3-month window's first day)
    m12 S2/b2  joined 2023-06-01, F1 01-01 (a day before the 3-month window)

March (F1 = stage-1 formula, F2 = stage 2, PB = probiotics, W = wipes, no points):

    03-04 m3 joins S1 with a2 (welcome W3, due 03-05) and buys F1 358.00:
          followup F3a (due 03-07) and replenish R3a (due 03-13)
    03-07 a2 reaches m3 on F3a: done
    03-08 the daily job: stage_up U1 for m1 (due 03-08); reactivate Re8 for m8 (due
          02-24, a February task) and Re7 for m7 (due 03-05)
    03-09 a1: "will_buy" on U1; c1 reaches m7 on Re7 (m7 never buys)
    03-10 m3 buys 2 × F1 716.00, six days after her first (a repeat): converts F3a
          (716.00); followup F3b (due 03-13); replenish R3b (due 03-31) supersedes R3a
    03-11 HQ's campaign C (03-11 to 03-20, S1 and S3, latest purchase probiotics):
          C4 for m4 and C7 for m7, due 03-11
    03-12 m9 joins S3 at the till, buying PB 99.00 with c2: welcome W9 (due 03-13),
          followup F9a (due 03-15), replenish due 04-08; a2 reaches m4 on C4
    03-13 a2 on F3b: m3 asks not to be called: F3b done; W3 and R3b cancelled
    03-15 the daily job: Re8 expired; stage_up U2 for m2 (due 03-13); C9 for m9 (due
          03-15). m1 buys F2 338.00 (39 days after 02-05, a repeat): converts U1
          (338.00) and keeps it (stage 2 from 03-15, within 30 days of turning six
          months); followup F1a (due 03-18), replenish R1 (due 03-26)
    03-16 a1: "no_answer" on U2 (m2 never buys stage 2: not kept); c2 reaches m9 on C9
    03-18 m9 buys PB 99.00 (a repeat): converts C9 (99.00); followup F9b (due 03-21)
    03-20 m10 joins S2 with b2, do-not-contact, and buys F1 358.00: no tasks
    03-22 m5 buys W 50.00 (a year after her last purchase: no repeat): followup F5
          (due 03-25)
    03-25 the daily job: F1a, C7, W9, F9a, F9b expired; reactivate Re2 for m2 (due
          03-17, stays open). a1 reaches m5 on F5
    03-26 m8 buys F1 358.00 (76 days after 01-10, a repeat): followup F8 (due 03-29)
    03-28 m10 buys W 30.00 (a repeat)
    03-29 b1: "no_answer" on F8
    04-01 the daily job: the snapshot of 03-31
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from advisor_api.jobs import daily_job
from core.db import fetch
from members import accounts, registry
from members.schemas import AdvisorIn
from tests.conftest import (
    FORMULA_1,
    FORMULA_2,
    PASSWORD,
    PROBIOTIC,
    WIPES,
    login,
    make_shop,
    receipt,
    unique_code,
    unique_phone,
)
from tests.test_outcomes import outcome, post_outcome
from tests.test_tasks import advisor_login

Client = httpx.AsyncClient
MONTH = "2024-03"
PLAY = (
    "made",
    "due",
    "contacted",
    "reached",
    "done",
    "expired",
    "converted",
    "converted_amount",
    "completion_rate",
    "conversion_rate",
)
MEMBER = (
    "members",
    "new_members",
    "active_3m",
    "active_12m",
    "receipts",
    "revenue",
    "average_ticket",
    "rn3",
    "stage_up_due",
    "stage_up_kept",
    "stage_up_retention",
)
NONE = (0, 0, 0, 0, 0, 0, 0, "0.00", None, None)
NO_MEMBERS = (0, 0, 0, 0, 0, "0.00", None, None, 0, 0, None)
KINDS = (
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


@dataclass
class March:
    ra: str  # region names
    rb: str
    s1: str  # store codes
    s2: str
    s3: str
    a1: str  # advisor codes
    a2: str
    x1: str  # S1's inactive advisor
    b1: str
    b2: str
    c1: str
    c2: str
    campaign_id: int
    # hq; region_a and region_b (RA's, RB's); owner_1 (S1's); advisors a1, a2, b1, c1, c2
    logins: dict[str, dict[str, str]]


def when(day: str, hour: str = "10:00") -> str:
    return f"{day}T{hour}:00+08:00"


async def register(
    client: Client,
    pos: dict[str, str],
    advisor: str,
    joined: str,
    birth: str | None = None,
    dnc: bool = False,
) -> str:
    phone = unique_phone()
    r = await client.post(
        "/pos/v1/members",
        json={
            "phone": phone,
            "name": "妈妈",
            "advisor_code": advisor,
            "registered_at": when(joined, "09:00"),
            "babies": [{"name": "宝宝", "birth_date": birth}] if birth else [],
            "do_not_contact": dnc,
        },
        headers=pos,
    )
    assert r.status_code == 201, r.text
    return phone


async def buy(
    client: Client,
    pos: dict[str, str],
    phone: str,
    day: str,
    advisor: str,
    lines: list[tuple[str, int, str]],
) -> None:
    body = receipt(phone=phone, purchased_at=when(day), lines=lines, advisor_code=advisor)
    r = await client.post("/pos/v1/purchases", json=body, headers=pos)
    assert r.status_code == 201, r.text


async def task_of(phone: str, kind: str, due: str) -> int:
    rows = await fetch(
        "SELECT t.id FROM task t JOIN member m ON m.id = t.member"
        " WHERE m.phone = {} AND t.kind = {} AND t.due_on = {}",
        phone,
        kind,
        date.fromisoformat(due),
    )
    assert len(rows) == 1, (phone, kind, due, rows)
    return int(rows[0]["id"])


async def call(
    client: Client, who: dict[str, str], task: int, result: str, day: str
) -> dict[str, Any]:
    r = await post_outcome(client, who, task, outcome(result, at=when(day, "11:00")))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
async def march(client: Client, hq: dict[str, str], products: None) -> AsyncIterator[March]:
    tag = uuid.uuid4().hex[:6]
    ra, rb = f"华南{tag}", f"华东{tag}"
    # The domain clock walks through the month, and is the suite's again afterwards.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIANTIAN_NOW", when("2024-03-01", "08:00"))
        rules = {
            r["kind"]: (r["due_offset_days"], r["expire_offset_days"], r["enabled"])
            for r in (await client.get("/hq/v1/playbook", headers=hq)).json()["rules"]
        }
        assert {k: rules[k] for k in ("followup_3d", "replenish", "stage_up", "welcome")} == {
            "followup_3d": (3, 6, True),
            "replenish": (-3, 7, True),
            "stage_up": (-7, 14, True),
            "welcome": (1, 4, True),
        }, "the hand-worked month assumes the default playbook"
        assert rules["reactivate"] == (45, 60, True)

        s1, s2, s3 = await make_shop(ra), await make_shop(ra), await make_shop(rb)
        a1, a2 = s1.advisors
        b1, b2 = s2.advisors
        c1, c2 = s3.advisors
        x1 = unique_code("A")
        await registry.put_advisor(
            x1, AdvisorIn(name="停用顾问", phone=unique_phone(), store_code=s1.code, active=False)
        )
        m1 = await register(client, s1.pos, a1, "2023-10-01", birth="2023-09-15")
        m2 = await register(client, s1.pos, a1, "2023-10-01", birth="2023-09-20")
        m4 = await register(client, s1.pos, a2, "2023-03-01")
        m5 = await register(client, s1.pos, a1, "2022-12-01")
        m6 = await register(client, s1.pos, a1, "2022-06-01")
        m7 = await register(client, s3.pos, c1, "2023-06-01")
        m8 = await register(client, s2.pos, b1, "2023-11-01")
        m11 = await register(client, s2.pos, b2, "2023-06-01")
        m12 = await register(client, s2.pos, b2, "2023-06-01")
        f1, f2, pb = (
            [(FORMULA_1, 1, "358.00")],
            [(FORMULA_2, 1, "338.00")],
            [(PROBIOTIC, 1, "99.00")],
        )
        for pos, phone, day, advisor, lines in (
            (s1.pos, m1, "2024-02-05", a1, f1),
            (s1.pos, m2, "2024-02-01", a1, f1),
            (s1.pos, m4, "2023-04-02", a2, pb),
            (s1.pos, m5, "2023-03-01", a1, f1),
            (s1.pos, m6, "2023-04-01", a1, f1),
            (s3.pos, m7, "2024-01-20", c1, pb),
            (s2.pos, m8, "2024-01-10", b1, f1),
            (s2.pos, m11, "2024-01-02", b2, f1),
            (s2.pos, m12, "2024-01-01", b2, f1),
        ):
            await buy(client, pos, phone, day, advisor, lines)
        history = await fetch(
            "SELECT COUNT(*) AS n FROM task t JOIN store s ON s.id = t.store"
            " WHERE s.region IN ({}, {})",
            ra,
            rb,
        )
        assert history[0]["n"] == 0, "the history's windows had all lapsed"

        logins = {
            "hq": hq,
            "a1": await advisor_login(client, a1),
            "a2": await advisor_login(client, a2),
            "b1": await advisor_login(client, b1),
            "c1": await advisor_login(client, c1),
            "c2": await advisor_login(client, c2),
        }

        mp.setenv("TIANTIAN_NOW", when("2024-03-04", "09:00"))
        m3 = await register(client, s1.pos, a2, "2024-03-04")
        mp.setenv("TIANTIAN_NOW", when("2024-03-04", "10:00"))
        await buy(client, s1.pos, m3, "2024-03-04", a2, f1)

        mp.setenv("TIANTIAN_NOW", when("2024-03-07", "11:00"))
        await call(
            client,
            logins["a2"],
            await task_of(m3, "followup_3d", "2024-03-07"),
            "reached",
            "2024-03-07",
        )

        mp.setenv("TIANTIAN_NOW", when("2024-03-08", "00:30"))
        await daily_job(date(2024, 3, 8))

        mp.setenv("TIANTIAN_NOW", when("2024-03-09", "11:00"))
        u1 = await task_of(m1, "stage_up", "2024-03-08")
        await call(client, logins["a1"], u1, "will_buy", "2024-03-09")
        await call(
            client,
            logins["c1"],
            await task_of(m7, "reactivate", "2024-03-05"),
            "reached",
            "2024-03-09",
        )

        mp.setenv("TIANTIAN_NOW", when("2024-03-10"))
        await buy(client, s1.pos, m3, "2024-03-10", a2, [(FORMULA_1, 2, "716.00")])

        mp.setenv("TIANTIAN_NOW", when("2024-03-11"))
        r = await client.post(
            "/hq/v1/campaigns",
            json={
                "name": "春季益生菌关怀",
                "starts_on": "2024-03-11",
                "ends_on": "2024-03-20",
                "segment": {
                    "store_codes": [s1.code, s3.code],
                    "last_purchase_category": "probiotic",
                },
                "script": "您好,{store}的益生菌会员活动开始了",
            },
            headers=hq,
        )
        assert r.status_code == 201, r.text
        assert r.json()["tasks_created"] == 2  # m4 and m7
        campaign_id = r.json()["campaign_id"]

        mp.setenv("TIANTIAN_NOW", when("2024-03-12"))
        m9 = unique_phone()
        await buy(client, s3.pos, m9, "2024-03-12", c2, pb)
        mp.setenv("TIANTIAN_NOW", when("2024-03-12", "11:00"))
        await call(
            client,
            logins["a2"],
            await task_of(m4, "campaign", "2024-03-11"),
            "reached",
            "2024-03-12",
        )

        mp.setenv("TIANTIAN_NOW", when("2024-03-13", "11:00"))
        answer = await call(
            client,
            logins["a2"],
            await task_of(m3, "followup_3d", "2024-03-13"),
            "do_not_contact",
            "2024-03-13",
        )
        assert answer["status"] == "done"

        mp.setenv("TIANTIAN_NOW", when("2024-03-15", "00:30"))
        await daily_job(date(2024, 3, 15))
        mp.setenv("TIANTIAN_NOW", when("2024-03-15"))
        await buy(client, s1.pos, m1, "2024-03-15", a1, f2)

        mp.setenv("TIANTIAN_NOW", when("2024-03-16", "11:00"))
        await call(
            client,
            logins["a1"],
            await task_of(m2, "stage_up", "2024-03-13"),
            "no_answer",
            "2024-03-16",
        )
        await call(
            client,
            logins["c2"],
            await task_of(m9, "campaign", "2024-03-15"),
            "reached",
            "2024-03-16",
        )

        mp.setenv("TIANTIAN_NOW", when("2024-03-18"))
        await buy(client, s3.pos, m9, "2024-03-18", c2, pb)

        mp.setenv("TIANTIAN_NOW", when("2024-03-20"))
        m10 = await register(client, s2.pos, b2, "2024-03-20", dnc=True)
        await buy(client, s2.pos, m10, "2024-03-20", b2, f1)

        mp.setenv("TIANTIAN_NOW", when("2024-03-22"))
        await buy(client, s1.pos, m5, "2024-03-22", a1, [(WIPES, 1, "50.00")])

        mp.setenv("TIANTIAN_NOW", when("2024-03-25", "00:30"))
        await daily_job(date(2024, 3, 25))
        mp.setenv("TIANTIAN_NOW", when("2024-03-25", "11:00"))
        await call(
            client,
            logins["a1"],
            await task_of(m5, "followup_3d", "2024-03-25"),
            "reached",
            "2024-03-25",
        )

        mp.setenv("TIANTIAN_NOW", when("2024-03-26"))
        await buy(client, s2.pos, m8, "2024-03-26", b1, f1)
        mp.setenv("TIANTIAN_NOW", when("2024-03-28"))
        await buy(client, s2.pos, m10, "2024-03-28", b2, [(WIPES, 1, "30.00")])
        mp.setenv("TIANTIAN_NOW", when("2024-03-29", "11:00"))
        await call(
            client,
            logins["b1"],
            await task_of(m8, "followup_3d", "2024-03-29"),
            "no_answer",
            "2024-03-29",
        )

        mp.setenv("TIANTIAN_NOW", when("2024-04-01", "00:30"))
        await daily_job(date(2024, 4, 1))

    for region, key in ((ra, "region_a"), (rb, "region_b")):
        phone = unique_phone()
        await accounts.create_user("region", phone, PASSWORD, region=region)
        logins[key] = await login(client, phone)
    phone = unique_phone()
    await accounts.create_user("owner", phone, PASSWORD, store_codes=[s1.code])
    logins["owner_1"] = await login(client, phone)
    yield March(ra, rb, s1.code, s2.code, s3.code, a1, a2, x1, b1, b2, c1, c2, campaign_id, logins)


async def get(client: Client, who: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    r = await client.get(path, params=params, headers=who)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def by_kind(body: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    assert [k["kind"] for k in body["kinds"]] == list(KINDS)
    return {k["kind"]: tuple(k[f] for f in PLAY) for k in body["kinds"]}


def zeros(**lines: tuple[Any, ...]) -> dict[str, tuple[Any, ...]]:
    return {kind: lines.get(kind, NONE) for kind in KINDS}


async def test_the_playbook_by_kind_and_campaign_matches_the_hand_worked_month(
    client: Client, march: March
) -> None:
    """A task counts in the month its due date falls in; ``due`` leaves out the
    cancelled; completion = done ÷ (done + expired); conversion = converted ÷ reached.

    S1, tasks due in March (made 12):
      followup_3d  F3a done reached converted 716.00; F3b done (do_not_contact: not
                   reached); F1a expired; F5 done reached
                   → made 4, due 4, contacted 3, reached 2, done 3, expired 1,
                     converted 1 (716.00); completion 3/4, conversion 1/2
      replenish    R3a cancelled (superseded), R3b cancelled (do-not-contact), R1 open
                   → made 3, due 3 − 2 = 1; nothing done or expired: no rates
      stage_up     U1 done reached converted 338.00; U2 done, no answer
                   → 2, 2, 2, 1, 2, 0, 1 (338.00); 2/2, 1/1
      reactivate   Re2 open → 1, 1, and nothing else
      welcome      W3 cancelled → made 1, due 0
      campaign     C4 done reached, no purchase → 1, 1, 1, 1, 1, 0, 0; 1/1, 0/1
    S2: F8 done, no answer → followup_3d 1, 1, 1, 0, 1, 0, 0; 1/1, no reach. (Re8 is
      due 02-24, a February task; m10 asked for no calls and has none.)
    S3:
      followup_3d  F9a, F9b expired → 2, 2, 0, 0, 0, 2, 0; 0/2
      reactivate   Re7 done reached, no purchase → 1, 1, 1, 1, 1, 0, 0; 1/1, 0/1
      welcome      W9 expired → 1, 1, 0, 0, 0, 1, 0; 0/1
      campaign     C7 expired; C9 done reached converted 99.00
                   → 2, 2, 1, 1, 1, 1, 1 (99.00); 1/2, 1/1
    """
    m, hq = march, march.logins["hq"]
    s1 = zeros(
        followup_3d=(4, 4, 3, 2, 3, 1, 1, "716.00", "0.7500", "0.5000"),
        replenish=(3, 1, 0, 0, 0, 0, 0, "0.00", None, None),
        stage_up=(2, 2, 2, 1, 2, 0, 1, "338.00", "1.0000", "1.0000"),
        reactivate=(1, 1, 0, 0, 0, 0, 0, "0.00", None, None),
        welcome=(1, 0, 0, 0, 0, 0, 0, "0.00", None, None),
        campaign=(1, 1, 1, 1, 1, 0, 0, "0.00", "1.0000", "0.0000"),
    )
    s2 = zeros(followup_3d=(1, 1, 1, 0, 1, 0, 0, "0.00", "1.0000", None))
    s3 = zeros(
        followup_3d=(2, 2, 0, 0, 0, 2, 0, "0.00", "0.0000", None),
        reactivate=(1, 1, 1, 1, 1, 0, 0, "0.00", "1.0000", "0.0000"),
        welcome=(1, 1, 0, 0, 0, 1, 0, "0.00", "0.0000", None),
        campaign=(2, 2, 1, 1, 1, 1, 1, "99.00", "0.5000", "1.0000"),
    )
    # RA = S1 + S2: followup_3d 5, 5, 4, 2, 4, 1, 1 → completion 4/5, conversion 1/2.
    ra = {**s1, "followup_3d": (5, 5, 4, 2, 4, 1, 1, "716.00", "0.8000", "0.5000")}
    # The chain = RA + RB: followup_3d 7, 7, 4, 2, 4, 3, 1 → 4/7 = 0.5714, 1/2;
    # reactivate 2, 2, 1, 1, 1 → 1/1, 0/1; welcome 2, 1 (W3 cancelled), 1 expired →
    # 0/1; campaign 3, 3, 2, 2, 2, 1, 1 (99.00) → 2/3 = 0.6667, 1/2.
    national = {
        **s1,
        "followup_3d": (7, 7, 4, 2, 4, 3, 1, "716.00", "0.5714", "0.5000"),
        "reactivate": (2, 2, 1, 1, 1, 0, 0, "0.00", "1.0000", "0.0000"),
        "welcome": (2, 1, 0, 0, 0, 1, 0, "0.00", "0.0000", None),
        "campaign": (3, 3, 2, 2, 2, 1, 1, "99.00", "0.6667", "0.5000"),
    }
    for scope, kinds in (
        (f"store:{m.s1}", s1),
        (f"store:{m.s2}", s2),
        (f"store:{m.s3}", s3),
        (f"region:{m.ra}", ra),
        (f"region:{m.rb}", s3),
        ("national", national),
    ):
        body = await get(client, hq, "/v1/insights/playbook", scope=scope, period=MONTH)
        assert (body["scope"], body["period"]) == (scope, MONTH)
        assert (body["first_day"], body["last_day"]) == ("2024-03-01", "2024-03-31")
        assert by_kind(body) == kinds, scope

    # The campaign, one line a scope: S1's C4 in RA; S3's C7 and C9 in RB; all three.
    def campaigns(body: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(c["campaign_id"], c["name"], *(c[f] for f in PLAY)) for c in body["campaigns"]]

    head = (m.campaign_id, "春季益生菌关怀")
    for scope, line in (
        (f"region:{m.ra}", (1, 1, 1, 1, 1, 0, 0, "0.00", "1.0000", "0.0000")),
        (f"region:{m.rb}", (2, 2, 1, 1, 1, 1, 1, "99.00", "0.5000", "1.0000")),
        ("national", (3, 3, 2, 2, 2, 1, 1, "99.00", "0.6667", "0.5000")),
    ):
        body = await get(client, hq, "/v1/insights/playbook", scope=scope, period=MONTH)
        assert campaigns(body) == [(*head, *line)], scope
    body = await get(client, hq, "/v1/insights/playbook", scope=f"store:{m.s2}", period=MONTH)
    assert body["campaigns"] == []

    # A week and a day. S1 in 2024-W11 (03-11 to 03-17): C4 (03-11) done reached; U2
    # (03-13) done, no answer; R3a (03-13) cancelled; F3b (03-13) done; Re2 (03-17) open.
    week = await get(client, hq, "/v1/insights/playbook", scope=f"store:{m.s1}", period="2024-W11")
    assert by_kind(week) == zeros(
        campaign=(1, 1, 1, 1, 1, 0, 0, "0.00", "1.0000", "0.0000"),
        stage_up=(1, 1, 1, 0, 1, 0, 0, "0.00", "1.0000", None),
        replenish=(1, 0, 0, 0, 0, 0, 0, "0.00", None, None),
        followup_3d=(1, 1, 1, 0, 1, 0, 0, "0.00", "1.0000", None),
        reactivate=(1, 1, 0, 0, 0, 0, 0, "0.00", None, None),
    )
    day = await get(client, hq, "/v1/insights/playbook", scope=f"store:{m.s1}", period="2024-03-13")
    assert by_kind(day) == zeros(
        stage_up=(1, 1, 1, 0, 1, 0, 0, "0.00", "1.0000", None),
        replenish=(1, 0, 0, 0, 0, 0, 0, "0.00", None, None),
        followup_3d=(1, 1, 1, 0, 1, 0, 0, "0.00", "1.0000", None),
    )
    # February holds Re8 (due 02-24, expired on 03-15) and nothing else of S2's.
    feb = await get(client, hq, "/v1/insights/playbook", scope=f"store:{m.s2}", period="2024-02")
    assert by_kind(feb) == zeros(reactivate=(1, 1, 0, 0, 0, 1, 0, "0.00", "0.0000", None))


def member_line(line: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(line[f] for f in MEMBER)


async def test_member_insights_whole_and_split_match_the_hand_worked_month(
    client: Client, march: March
) -> None:
    """Members and activity as of 03-31 (the snapshot the 04-01 daily job took): the
    3-month window is 2024-01-02 to 03-31 (90 days), the 12-month one 2023-04-02 to
    03-31 (365 days).

    S1: m1, m2, m3, m4, m5, m6 → 6 members; m3 new in March.
        3 months: m1 (03-15), m2 (02-01), m3, m5 (03-22) → 4; not m4 or m6.
        12 months: those and m4 (2023-04-02, the first day) → 5; not m6 (2023-04-01).
        Receipts: m3 358.00, m3 716.00 (repeat), m1 338.00 (repeat), m5 50.00 (a year
        after her last: no repeat) → 4 receipts, 1462.00, average 365.50,
        RN3 = (716 + 338) / 1462 = 0.7209.
        Stage-up: U1 and U2 due, U1 kept → 1/2.
    S2: m8, m10, m11, m12 → 4; m10 new. 3 months: m8, m10, m11 (01-02, the first
        day) → 3; not m12 (01-01). 12 months: 4.
        Receipts: m10 358.00, m8 358.00 (repeat), m10 30.00 (repeat) → 3, 746.00,
        average 248.67, RN3 = (358 + 30) / 746 = 0.5201.
    S3: m7, m9 → 2; m9 new. Both active. Receipts: m9 99.00, m9 99.00 (repeat) → 2,
        198.00, average 99.00, RN3 99 / 198 = 0.5000.
    RA = S1 + S2: 10, 2, 7, 9; 7 receipts, 2208.00, average 315.43,
        RN3 1442 / 2208 = 0.6531; stage-up 1/2.
    The chain: 12, 3, 9, 11; 9 receipts, 2406.00, average 267.33,
        RN3 1541 / 2406 = 0.6405; stage-up 1/2.
    """
    m, hq = march, march.logins["hq"]
    s1 = (6, 1, 4, 5, 4, "1462.00", "365.50", "0.7209", 2, 1, "0.5000")
    s2 = (4, 1, 3, 4, 3, "746.00", "248.67", "0.5201", 0, 0, None)
    s3 = (2, 1, 2, 2, 2, "198.00", "99.00", "0.5000", 0, 0, None)
    ra = (10, 2, 7, 9, 7, "2208.00", "315.43", "0.6531", 2, 1, "0.5000")
    national = (12, 3, 9, 11, 9, "2406.00", "267.33", "0.6405", 2, 1, "0.5000")

    async def members(scope: str, by: str | None = None, period: str = MONTH) -> dict[str, Any]:
        params = {"scope": scope, "period": period} | ({"by": by} if by else {})
        body = await get(client, hq, "/v1/insights/members", **params)
        assert (body["scope"], body["period"], body["by"]) == (scope, period, by)
        return body

    for scope, line in (
        (f"store:{m.s1}", s1),
        (f"store:{m.s2}", s2),
        (f"store:{m.s3}", s3),
        (f"region:{m.ra}", ra),
        (f"region:{m.rb}", s3),
        ("national", national),
    ):
        body = await members(scope)
        assert member_line(body["total"]) == line, scope
        assert body["rows"] == [] and body["active_as_of"] == "2024-03-31"

    # A region by store: its two stores, by code, with their names.
    body = await members(f"region:{m.ra}", "store")
    assert [(r["key"], r["name"], member_line(r)) for r in body["rows"]] == sorted(
        [(m.s1, f"测试店{m.s1}", s1), (m.s2, f"测试店{m.s2}", s2)]
    )
    assert member_line(body["total"]) == ra

    # The chain by region: the two regions; every other region of the run has no
    # member as of 2024 and nothing in March.
    body = await members("national", "region")
    rows = {r["key"]: member_line(r) for r in body["rows"]}
    assert rows[m.ra] == ra and rows[m.rb] == s3
    assert {k: v for k, v in rows.items() if k not in (m.ra, m.rb)} == dict.fromkeys(
        set(rows) - {m.ra, m.rb}, NO_MEMBERS
    )
    assert member_line(body["total"]) == national
    body = await members("national", "store")
    rows = {r["key"]: member_line(r) for r in body["rows"]}
    assert (rows[m.s1], rows[m.s2], rows[m.s3]) == (s1, s2, s3)

    # A week: S3 in 2024-W11 (03-11 to 03-17). m9 joined and bought 99.00 on 03-12,
    # her first receipt. The members are as of 03-14, the latest snapshot by then (the
    # 03-15 daily job's): m7 and m9, both active.
    body = await members(f"store:{m.s3}", period="2024-W11")
    assert body["active_as_of"] == "2024-03-14"
    assert member_line(body["total"]) == (2, 1, 2, 2, 1, "99.00", "99.00", "0.0000", 0, 0, None)


def target_rows(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            r["subject"],
            r["code"],
            None if r["target"] is None else (r["target"]["new_members"], r["target"]["points"]),
            (r["actual"]["new_members"], r["actual"]["points"]),
            (r["attainment"]["new_members"], r["attainment"]["points"]),
            r["derived"],
        )
        for r in body["rows"]
    ]


async def test_targets_set_as_json_and_csv_split_by_the_owner_and_attained(
    client: Client, march: March
) -> None:
    """Actual figures are March's score ledger: points at one a yuan of eligible
    spend (wipes earn none), a new member to the advisor who recruited them.

    a1: m1 338 (m5's wipes: 0) → 0 new, 338 points; a2: m3 358 + 716, recruited m3 →
    1, 1074; S1: 1, 1412. b1: m8 358 → 0, 358; b2: m10 358 (her wipes: 0), recruited
    m10 → 1, 358; S2: 1, 716. c1: 0, 0; c2: m9 99 + 99, recruited m9 → 1, 198; S3: 1, 198.
    """
    m, hq = march, march.logins["hq"]
    url = f"/hq/v1/targets/{MONTH}"

    # JSON: S1 and S3; an unknown advisor is reported by its place in the list. A
    # whole number may be written 2000.0 (JSON Schema's integer), not 2000.5.
    r = await client.put(
        url,
        json={"targets": [{"subject": "store", "code": m.s1, "new_members": 3, "points": 0.5}]},
        headers=hq,
    )
    assert r.status_code == 400, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["targets[0].points"]
    r = await client.put(
        url,
        json={
            "targets": [
                {"subject": "store", "code": m.s1, "new_members": 3, "points": 2000.0},
                {"subject": "store", "code": m.s3, "new_members": 4, "points": 900},
                {"subject": "advisor", "code": "NOPE404", "new_members": 1, "points": 1},
            ]
        },
        headers=hq,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "month": MONTH,
        "saved": 2,
        "rejected": [{"line": 3, "field": "code", "message": "no advisor NOPE404"}],
    }

    # CSV with a byte-order mark and CRLF lines (the header is line 1): S3 again
    # (replacing 900 with 600), c1's own, an unknown store, a count that is no number.
    csv_text = (
        "subject,code,new_members,points\r\n"
        f"store,{m.s3},4,600\r\n"
        f"advisor,{m.c1},1,100\r\n"
        "store,SNOSUCH,1,1\r\n"
        f"advisor,{m.c2},two,300\r\n"
    )
    r = await client.put(
        url,
        content=b"\xef\xbb\xbf" + csv_text.encode(),
        headers={**hq, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "month": MONTH,
        "saved": 2,
        "rejected": [
            {"line": 4, "field": "code", "message": "no store SNOSUCH"},
            {"line": 5, "field": "new_members", "message": "must be a whole number"},
        ],
    }
    # A file without a column is refused whole, naming the header.
    r = await client.put(
        url,
        content=b"subject,code,new_members\nstore,S1,1\n",
        headers={**hq, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "header", r.text

    # Stores: S1 3 / 2000 → 1/3 = 0.3333, 1412/2000 = 0.7060; S2 has none (nulls);
    # S3 4 / 600 (the CSV's) → 1/4 = 0.2500, 198/600 = 0.3300.
    body = await get(client, hq, f"/v1/targets/{MONTH}", scope=f"region:{m.ra}", subject="store")
    assert (body["month"], body["scope"], body["subject"]) == (MONTH, f"region:{m.ra}", "store")
    assert target_rows(body) == sorted(
        [
            ("store", m.s1, (3, 2000), (1, 1412), ("0.3333", "0.7060"), False),
            ("store", m.s2, None, (1, 716), (None, None), False),
        ]
    )
    body = await get(client, hq, f"/v1/targets/{MONTH}", scope=f"store:{m.s3}")
    assert target_rows(body) == [("store", m.s3, (4, 600), (1, 198), ("0.2500", "0.3300"), False)]

    # S3's advisors: c1 has their own 1 / 100 (0/1, 0/100); c2 gets the store's share,
    # ⌈4 / 2⌉ = 2 and 600 / 2 = 300, marked derived (1/2 = 0.5000, 198/300 = 0.6600).
    body = await get(client, hq, f"/v1/targets/{MONTH}", scope=f"store:{m.s3}", subject="advisor")
    assert target_rows(body) == sorted(
        [
            ("advisor", m.c1, (1, 100), (0, 0), ("0.0000", "0.0000"), False),
            ("advisor", m.c2, (2, 300), (1, 198), ("0.5000", "0.6600"), True),
        ]
    )

    # S1's owner gives a1 1 / 800. a2 gets ⌈3 / 2⌉ = 2 and 2000 / 2 = 1000: S1's two
    # active advisors (x1 is inactive, has no target and no score, and is not listed).
    owner = m.logins["owner_1"]
    split = f"/owner/v1/stores/{m.s1}/targets/{MONTH}"
    r = await client.put(
        split, json={"advisors": [{"code": m.a1, "new_members": 1, "points": 800}]}, headers=owner
    )
    assert r.status_code == 200, r.text
    assert target_rows(r.json()) == sorted(
        [
            ("advisor", m.a1, (1, 800), (0, 338), ("0.0000", "0.4225"), False),
            ("advisor", m.a2, (2, 1000), (1, 1074), ("0.5000", "1.0740"), True),
        ]
    )
    # Split again: it replaces the split, so a1 falls back to the store's share.
    r = await client.put(
        split, json={"advisors": [{"code": m.a2, "new_members": 2, "points": 1200}]}, headers=owner
    )
    assert r.status_code == 200, r.text
    assert target_rows(r.json()) == sorted(
        [
            ("advisor", m.a1, (2, 1000), (0, 338), ("0.0000", "0.3380"), True),
            ("advisor", m.a2, (2, 1200), (1, 1074), ("0.5000", "0.8950"), False),
        ]
    )
    assert r.json() == await get(
        client, hq, f"/v1/targets/{MONTH}", scope=f"store:{m.s1}", subject="advisor"
    )
    # S2 has no store target: its advisors have none, derived or not.
    body = await get(client, hq, f"/v1/targets/{MONTH}", scope=f"store:{m.s2}", subject="advisor")
    assert target_rows(body) == sorted(
        [
            ("advisor", m.b1, None, (0, 358), (None, None), False),
            ("advisor", m.b2, None, (1, 358), (None, None), False),
        ]
    )

    # The advisor's own score carries the same.
    async def score(who: str) -> tuple[Any, Any]:
        body = await get(client, m.logins[who], "/advisor/v1/me/score", period=MONTH)
        return body["target"], body["attainment"]

    assert await score("a2") == (
        {
            "month": MONTH,
            "new_members": 2,
            "points": 1200,
            "derived": False,
            "actual": {"new_members": 1, "points": 1074},
        },
        {"new_members": "0.5000", "points": "0.8950"},
    )
    assert await score("a1") == (
        {
            "month": MONTH,
            "new_members": 2,
            "points": 1000,
            "derived": True,
            "actual": {"new_members": 0, "points": 338},
        },
        {"new_members": "0.0000", "points": "0.3380"},
    )
    assert await score("b1") == (None, None)
    c1 = await get(client, m.logins["c1"], "/advisor/v1/me/score", period="2024-W11")
    assert c1["target"]["new_members"] == 1 and c1["target"]["month"] == MONTH

    # An advisor reads their store's table (their own scope by default), not another's.
    body = await get(client, m.logins["a1"], f"/v1/targets/{MONTH}", subject="advisor")
    assert body["scope"] == f"store:{m.s1}" and len(body["rows"]) == 2
    r = await client.get(
        f"/v1/targets/{MONTH}", params={"scope": f"store:{m.s3}"}, headers=m.logins["a1"]
    )
    assert r.status_code == 404, r.text

    # The owner's split: only their store's advisors, only their store, not a region's.
    r = await client.put(
        split, json={"advisors": [{"code": m.b1, "new_members": 1, "points": 1}]}, headers=owner
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "advisors[0].code"
    r = await client.put(
        f"/owner/v1/stores/{m.s3}/targets/{MONTH}",
        json={"advisors": [{"code": m.c1, "new_members": 1, "points": 1}]},
        headers=owner,
    )
    assert r.status_code == 404, r.text
    for who in ("region_a", "a1"):
        r = await client.put(split, json={"advisors": []}, headers=m.logins[who])
        assert r.status_code == 403, (who, r.text)
        r = await client.put(url, json={"targets": []}, headers=m.logins[who])
        assert r.status_code == 403, (who, r.text)
    # Nothing of that changed a target.
    body = await get(client, hq, f"/v1/targets/{MONTH}", scope=f"store:{m.s3}", subject="advisor")
    assert {row[1]: row[2] for row in target_rows(body)} == {m.c1: (1, 100), m.c2: (2, 300)}


async def test_a_region_sees_its_own_region_and_an_owner_their_own_store(
    client: Client, march: March
) -> None:
    m = march
    region, owner = m.logins["region_a"], m.logins["owner_1"]

    async def status(who: dict[str, str], path: str, **params: Any) -> tuple[int, Any]:
        r = await client.get(path, params=params, headers=who)
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json"
        return r.status_code, r.json()

    # By default a regional login's scope is its region: the same figures HQ sees.
    for path in ("/v1/insights/members", "/v1/insights/playbook", f"/v1/targets/{MONTH}"):
        code, body = await status(region, path, period=MONTH)
        assert code == 200 and body["scope"] == f"region:{m.ra}", path
        hq_body = await get(client, m.logins["hq"], path, scope=f"region:{m.ra}", period=MONTH)
        assert body == hq_body, path
    code, body = await status(region, "/v1/insights/members", scope=f"store:{m.s2}", period=MONTH)
    assert code == 200 and body["total"]["members"] == 4
    code, body = await status(region, "/v1/insights/members", by="store", period=MONTH)
    assert code == 200 and [r["key"] for r in body["rows"]] == sorted([m.s1, m.s2])

    # Outside it: the chain and another region are forbidden; another region's store
    # is not found, as an unknown one would be.
    for path in (
        "/v1/insights/members",
        "/v1/insights/playbook",
        f"/v1/targets/{MONTH}",
        "/v1/leaderboards/advisors",
        "/v1/leaderboards/stores",
    ):
        for scope, expected in (
            ("national", 403),
            (f"region:{m.rb}", 403),
            (f"store:{m.s3}", 404),
        ):
            if path == "/v1/leaderboards/stores" and scope.startswith("store:"):
                continue  # stores are ranked over a region or the chain only
            code, _ = await status(region, path, scope=scope, period=MONTH)
            assert code == expected, (path, scope, code)
    code, body = await status(
        region, "/v1/leaderboards/advisors", scope=f"region:{m.ra}", period=MONTH
    )
    assert code == 200
    lines = {e["advisor_code"]: e for e in body["entries"]}
    assert lines[m.a2]["points"] == 1074 and lines[m.a2]["advisor_name"] == "顾问1"
    assert lines[m.b1]["points"] == 358 and m.c2 not in lines
    # Without a scope, a regional login's league table is its region's.
    code, own = await status(region, "/v1/leaderboards/stores", period=MONTH)
    assert code == 200 and own["scope"] == f"region:{m.ra}"
    assert (await status(region, f"/owner/v1/stores/{m.s1}/dashboard", period=MONTH))[0] == 200
    assert (await status(region, f"/owner/v1/stores/{m.s3}/dashboard", period=MONTH))[0] == 404
    # RB's own login sees RB.
    code, body = await status(m.logins["region_b"], "/v1/insights/members", period=MONTH)
    assert code == 200 and body["scope"] == f"region:{m.rb}" and body["total"]["members"] == 2

    # An owner sees their store and nothing else: by default that store.
    code, body = await status(owner, "/v1/insights/members", period=MONTH)
    assert code == 200 and body["scope"] == f"store:{m.s1}" and body["total"]["members"] == 6
    for scope, expected in (
        (f"store:{m.s2}", 404),
        (f"store:{m.s3}", 404),
        (f"region:{m.ra}", 403),
        ("national", 403),
    ):
        for path in ("/v1/insights/members", "/v1/insights/playbook", f"/v1/targets/{MONTH}"):
            assert (await status(owner, path, scope=scope, period=MONTH))[0] == expected
    # Advisors do not read insights at all.
    for path in ("/v1/insights/members", "/v1/insights/playbook"):
        assert (await status(m.logins["a1"], path, period=MONTH))[0] == 403

    # A split goes one level down: a region by store; not a region by region, nor a
    # store by anything. An unknown split is no split at all.
    for who, scope, by, expected in (
        (region, None, "region", 422),
        (region, f"store:{m.s1}", "store", 422),
        (owner, None, "store", 422),
        (m.logins["hq"], f"store:{m.s1}", "region", 422),
        (m.logins["hq"], "national", "district", 400),
    ):
        params = {"by": by, "period": MONTH} | ({"scope": scope} if scope else {})
        code, body = await status(who, "/v1/insights/members", **params)
        assert code == expected and [e["field"] for e in body["errors"]] == ["by"], body


async def test_bad_periods_months_and_scopes_name_their_field(client: Client, march: March) -> None:
    hq = march.logins["hq"]
    for path in ("/v1/insights/members", "/v1/insights/playbook"):
        # The shape of a period but no such day or week: 422; not the shape: 400.
        for period, expected in (("2024-02-30", 422), ("2025-W53", 422), ("2024-13", 400)):
            r = await client.get(path, params={"period": period}, headers=hq)
            assert r.status_code == expected, (path, period, r.text)
            assert [e["field"] for e in r.json()["errors"]] == ["period"]
        for scope in ("store:NOSUCH", "county:1", "region:"):
            r = await client.get(path, params={"scope": scope, "period": MONTH}, headers=hq)
            assert r.status_code == 422, (path, scope, r.text)
            assert [e["field"] for e in r.json()["errors"]] == ["scope"]
    for month, expected in (("1999-12", 422), ("2024-13", 400), ("2024-W11", 400)):
        r = await client.get(f"/v1/targets/{month}", headers=hq)
        assert r.status_code == expected and r.json()["errors"][0]["field"] == "month", r.text
        r = await client.put(f"/hq/v1/targets/{month}", json={"targets": []}, headers=hq)
        assert r.status_code == expected and r.json()["errors"][0]["field"] == "month", r.text
    r = await client.get(f"/v1/targets/{MONTH}", params={"subject": "region"}, headers=hq)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "subject", r.text
