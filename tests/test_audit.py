"""The audit trail: every change HQ or an owner makes to what the program is steered
and paid by writes exactly one row (who, when, what, before → after), in the
change's own transaction; a write that changes nothing writes none."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from audit import trail
from core.db import fetch, in_write_transaction
from core.errors import InvalidInput
from members import accounts, logins
from orders import channels
from tests.conftest import PASSWORD, login, make_shop, unique_code, unique_phone

Client = httpx.AsyncClient


async def rows(client: Client, hq: dict[str, str], entity: str, key: str) -> list[dict[str, Any]]:
    """The trail's rows for one key, every page of it read."""
    found: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        r = await client.get(
            "/hq/v1/audit", params={"entity": entity, "after_id": after}, headers=hq
        )
        assert r.status_code == 200, r.text
        found += [e for e in r.json()["entries"] if e["key"] == key]
        after = r.json()["next_after_id"]
    return found


async def hq_phone(client: Client) -> tuple[str, dict[str, str]]:
    phone = unique_phone()
    await accounts.create_user("hq", phone, PASSWORD)
    return phone, await login(client, phone)


async def test_registry_changes_each_write_one_row(client: Client, products: None) -> None:
    phone, hq = await hq_phone(client)
    code = unique_code("S")
    store = {"name": "审计店", "region": "华南", "timezone": "Asia/Shanghai"}
    assert (await client.put(f"/hq/v1/stores/{code}", json=store, headers=hq)).status_code == 200
    (made,) = await rows(client, hq, "store", code)
    assert made["action"] == "create" and made["who"] == f"hq:{phone}"
    assert made["before"] is None and made["after"]["name"] == "审计店"

    # The same PUT again changes nothing and leaves no row.
    await client.put(f"/hq/v1/stores/{code}", json=store, headers=hq)
    assert len(await rows(client, hq, "store", code)) == 1

    moved = {**store, "region": "华东"}
    await client.put(f"/hq/v1/stores/{code}", json=moved, headers=hq)
    changes = await rows(client, hq, "store", code)
    assert len(changes) == 2
    assert changes[1]["action"] == "update"
    assert (changes[1]["before"]["region"], changes[1]["after"]["region"]) == ("华南", "华东")

    adv = unique_code("A")
    body = {"name": "小审", "phone": unique_phone(), "store_code": code, "active": True}
    await client.put(f"/hq/v1/advisors/{adv}", json=body, headers=hq)
    await client.put(f"/hq/v1/advisors/{adv}", json={**body, "active": False}, headers=hq)
    made, left = await rows(client, hq, "advisor", adv)
    assert (made["action"], left["action"]) == ("create", "update")
    assert (left["before"]["active"], left["after"]["active"]) == (True, False)

    sku = unique_code("P")
    product = {"name": "米粉", "category": "cereal"}
    await client.put(f"/hq/v1/products/{sku}", json=product, headers=hq)
    await client.put(f"/hq/v1/products/{sku}", json=product, headers=hq)
    assert len(await rows(client, hq, "product", sku)) == 1


async def test_a_refused_change_writes_no_row(client: Client) -> None:
    _, hq = await hq_phone(client)
    adv = unique_code("A")
    body = {"name": "无店", "phone": unique_phone(), "store_code": "NOSUCH", "active": True}
    r = await client.put(f"/hq/v1/advisors/{adv}", json=body, headers=hq)
    assert r.status_code == 422
    assert await rows(client, hq, "advisor", adv) == []

    async def change_then_fail() -> None:
        await trail.record("store", "ROLLEDBACK", "create", None, {"name": "x"})
        raise RuntimeError("the change fails after its row")

    with pytest.raises(RuntimeError):
        await in_write_transaction(change_then_fail)
    assert await rows(client, hq, "store", "ROLLEDBACK") == []


async def test_logins_and_keys(client: Client) -> None:
    _, hq = await hq_phone(client)
    shop = await make_shop()
    phone = unique_phone()
    await accounts.create_user("owner", phone, PASSWORD, store_codes=[shop.code])
    await logins.reset_password(phone, "another-secret-1")
    await logins.set_active(phone, False)
    await logins.set_active(phone, False)  # already so: no row
    made, reset, off = await rows(client, hq, "login", phone)
    assert made["after"]["stores"] == [shop.code] and made["after"]["role"] == "owner"
    assert reset["action"] == "reset_password" and reset["after"] is None  # no secret kept
    assert off["after"] == {"active": False}

    prefix = shop.pos["X-API-Key"][:12]
    await logins.revoke_pos_key(prefix)
    await logins.revoke_pos_key(prefix)
    made, revoked = await rows(client, hq, "pos_key", prefix)
    assert made["after"] == {"store_code": shop.code, "revoked": False}
    assert revoked["action"] == "revoke" and revoked["after"]["revoked"] is True
    r = await client.get(f"/pos/v1/members/{unique_phone()}", headers=shop.pos)
    assert r.status_code == 401


async def test_channel_keys_made_and_revoked_each_write_one_row(client: Client) -> None:
    _, hq = await hq_phone(client)
    with trail.acting("cli:tester"):
        key = await channels.create_channel_key("审计渠道")
    (row,) = await fetch("SELECT id FROM channel_key WHERE prefix = {}", key[:12])
    await channels.revoke_channel_key(row["id"])
    await channels.revoke_channel_key(row["id"])  # already so: no row
    made, revoked = await rows(client, hq, "channel_key", key[:12])
    assert made["who"] == "cli:tester" and made["action"] == "create"
    assert made["after"] == {
        "id": row["id"],
        "name": "审计渠道",
        "prefix": key[:12],
        "active": True,
    }
    assert key not in str(made)  # the prefix only, never the key
    assert (revoked["action"], revoked["after"]["active"]) == ("revoke", False)
    r = await client.get("/o2o/v1/orders/none", headers={"X-API-Key": key})
    assert r.status_code == 401

    # A key that cannot be stored (its hash taken) leaves no row: one transaction.
    with pytest.raises(Exception, match=r"(?i)unique"):
        await channels.create_channel_key("重复渠道", key)
    assert len(await rows(client, hq, "channel_key", key[:12])) == 2
    with pytest.raises(InvalidInput):
        await channels.create_channel_key("  ")


async def test_a_channel_key_whose_row_cannot_be_written_is_not_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def trail_down(*_: Any) -> bool:
        raise RuntimeError("the trail cannot be written")

    monkeypatch.setattr(channels.trail, "record", trail_down)
    with pytest.raises(RuntimeError):
        await channels.create_channel_key("无记录渠道")
    assert await fetch("SELECT id FROM channel_key WHERE name = {}", "无记录渠道") == []


async def test_steering_changes_each_write_one_row(client: Client, products: None) -> None:
    phone, hq = await hq_phone(client)
    shop = await make_shop()

    book = (await client.get("/hq/v1/playbook", headers=hq)).json()
    rule = next(r for r in book["rules"] if r["kind"] == "welcome")
    changed = {**rule, "script": "欢迎加入" + unique_code("")}
    await client.put("/hq/v1/playbook", json={"rules": [changed]}, headers=hq)
    await client.put("/hq/v1/playbook", json={"rules": [rule]}, headers=hq)
    entries = [e for e in (await rows(client, hq, "playbook", "welcome"))[-2:]]
    assert entries[0]["after"]["welcome"]["script"] == changed["script"]
    assert entries[1]["before"]["welcome"]["script"] == changed["script"]

    r = await client.post(
        "/hq/v1/campaigns",
        json={
            "name": "审计活动",
            "starts_on": "2026-12-01",
            "ends_on": "2026-12-10",
            "segment": {"store_codes": [shop.code]},
            "script": "您好",
        },
        headers=hq,
    )
    assert r.status_code == 201, r.text
    (made,) = await rows(client, hq, "campaign", str(r.json()["campaign_id"]))
    assert made["after"]["name"] == "审计活动" and made["who"] == f"hq:{phone}"

    r = await client.post(
        "/hq/v1/contests",
        json={
            "name": "审计赛",
            "kind": "league",
            "subject": "advisor",
            "scope": f"store:{shop.code}",
            "starts_on": "2026-12-01",
            "ends_on": "2026-12-31",
        },
        headers=hq,
    )
    assert r.status_code == 201, r.text
    assert len(await rows(client, hq, "contest", str(r.json()["contest_id"]))) == 1

    r = await client.put(
        "/hq/v1/targets/2026-12",
        json={
            "targets": [{"subject": "store", "code": shop.code, "new_members": 3, "points": 900}]
        },
        headers=hq,
    )
    assert r.status_code == 200, r.text
    owner_phone = unique_phone()
    await accounts.create_user("owner", owner_phone, PASSWORD, store_codes=[shop.code])
    owner = await login(client, owner_phone)
    r = await client.put(
        f"/owner/v1/stores/{shop.code}/targets/2026-12",
        json={"advisors": [{"code": shop.advisors[0], "new_members": 2, "points": 500}]},
        headers=owner,
    )
    assert r.status_code == 200, r.text
    (split,) = await rows(client, hq, "targets", f"2026-12:{shop.code}")
    assert split["who"] == f"owner:{owner_phone}"
    assert split["after"] == {f"advisor:{shop.advisors[0]}": [2, 500]}
    hq_rows = [
        e
        for e in await rows(client, hq, "targets", "2026-12")
        if f"store:{shop.code}" in e["after"]
    ]
    assert len(hq_rows) == 1


async def test_pay_settings_and_the_close(client: Client) -> None:
    phone, hq = await hq_phone(client)
    weights = (await client.get("/hq/v1/score-weights", headers=hq)).json()
    before = len(await rows(client, hq, "score_weights", "default"))
    await client.put("/hq/v1/score-weights", json={**weights, "task_done": "7.5"}, headers=hq)
    await client.put("/hq/v1/score-weights", json=weights, headers=hq)
    trail_rows = await rows(client, hq, "score_weights", "default")
    assert len(trail_rows) == before + 2
    assert trail_rows[-2]["after"]["task_done"] == "7.50"

    policy = (await client.get("/hq/v1/points-policy", headers=hq)).json()
    await client.put("/hq/v1/points-policy", json={**policy, "expiry_warning_days": 21}, headers=hq)
    await client.put("/hq/v1/points-policy", json=policy, headers=hq)
    changed, back = (await rows(client, hq, "points_policy", "policy"))[-2:]
    assert changed["after"]["expiry_warning_days"] == 21
    assert back["before"]["expiry_warning_days"] == 21

    # Rates from a month far ahead (no other test pays there): the statement says so.
    month = "2031-0" + str(1 + int(unique_phone()[-1]) % 9)
    rates = {"effective_from": month, "per_new_member": "15", "per_1000_points": "8"}
    assert (await client.put("/hq/v1/bonus-rates", json=rates, headers=hq)).status_code == 200
    await client.put("/hq/v1/bonus-rates", json=rates, headers=hq)  # the same: no row
    (set_rates,) = await rows(client, hq, "bonus_rates", month)
    assert set_rates["after"]["per_1000_points"] == "8.00"
    r = await client.get("/hq/v1/bonus-statements", params={"period": month}, headers=hq)
    (note,) = r.json()["changes"]
    assert note["who"] == f"hq:{phone}" and note["note"].startswith("rates changed on ")

    # A month long past, closed twice: one row.
    old = "2019-0" + str(1 + int(unique_phone()[-1]) % 9)
    for _ in range(2):
        assert (await client.post(f"/hq/v1/periods/{old}/close", headers=hq)).status_code == 200
    (closed,) = await rows(client, hq, "month_close", old)
    assert closed["action"] == "close"


async def test_the_trail_is_append_only_and_reads_as_csv(client: Client) -> None:
    _, hq = await hq_phone(client)
    code = unique_code("S")
    await client.put(f"/hq/v1/stores/{code}", json={"name": "CSV店", "region": "华南"}, headers=hq)
    with pytest.raises(Exception, match="append-only"):
        await fetch("UPDATE audit_entry SET who = 'someone else' WHERE key = {}", code)
    with pytest.raises(Exception, match="append-only"):
        await fetch("DELETE FROM audit_entry WHERE key = {}", code)
    r = await client.get(
        "/hq/v1/audit", params={"entity": "store"}, headers={**hq, "Accept": "text/csv"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert code in r.text and "CSV店" in r.text
    r = await client.get("/hq/v1/audit", params={"since": "2999-01-01T00:00:00+08:00"}, headers=hq)
    assert r.json()["entries"] == []
    r = await client.get("/hq/v1/audit", params={"entity": "nonsense"}, headers=hq)
    assert r.status_code == 400
