"""The command line of docs/contract.md, run as a newcomer would: in its own process."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.conftest import Shop, login, receipt, unique_phone


def tiantian(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "advisor_api.cli", *args],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_pos_key_create_prints_a_working_key_alone_on_the_last_line(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    done = tiantian("pos-key", "create", "--store", shop.code)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert " " not in key
    r = await client.post("/pos/v1/purchases", json=receipt(), headers={"X-API-Key": key})
    assert r.status_code == 201


async def test_user_create_makes_a_login_that_signs_in(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    phone = unique_phone()
    done = tiantian(
        "user",
        "create",
        "--role",
        "owner",
        "--phone",
        phone,
        "--password",
        "owner-pass-1",
        "--store",
        shop.code,
    )
    assert done.returncode == 0, done.stderr
    assert (await login(client, phone, "owner-pass-1"))["Authorization"].startswith("Bearer ")
    again = tiantian(
        "user",
        "create",
        "--role",
        "owner",
        "--phone",
        phone,
        "--password",
        "owner-pass-1",
        "--store",
        shop.code,
    )
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--role", "advisor", "--phone", "13911112222", "--password", "longenough"],
            "advisor_code",
        ),
        (
            [
                "--role",
                "owner",
                "--phone",
                "13911112223",
                "--password",
                "longenough",
                "--store",
                "NOPE",
            ],
            "no store NOPE",
        ),
        (["--role", "hq", "--phone", "13911112224", "--password", "short"], "at least 8"),
    ],
)
def test_user_create_refuses_bad_logins_clearly(args: list[str], message: str) -> None:
    done = tiantian("user", "create", *args)
    assert done.returncode == 2 and message in done.stderr


async def test_health_answers_503_when_the_database_is_unreachable(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_: object) -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr("core.db.fetch", unreachable)
    r = await client.get("/health")
    assert r.status_code == 503 and r.json()["database"] == "unreachable"
