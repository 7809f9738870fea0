"""The OpenAPI document says exactly what the server does: schemathesis (pinned) sends
generated requests, valid and invalid, as HQ, an owner, an advisor, a till and a
sales channel, and every check it has must pass: no 5xx, no status or content type
the document does not list, no answer off its schema, no schema-valid request refused
as malformed (400), no schema-violating request accepted. Time-boxed with a fixed
seed; on SQLite, with the demo chain, in a server of its own. Every endpoint added
later meets it too.

The settings it runs with are in tests/schemathesis.toml: a request the schema admits
may still be refused by the business rules with 422 (an unknown SKU, 2026-02-30).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKEND, TEST_NOW

REPO = Path(__file__).resolve().parent.parent
ST = Path(sys.executable).parent / "st"
SECONDS = int(os.environ.get("TIANTIAN_CONTRACT_SECONDS", "25"))
DEMO_PASSWORD = "tiantian123"
ROLES = {
    "hq": "13900000000",
    "region": "13900000003",
    "owner": "13900000001",
    "advisor": "13800000001",
}

pytestmark = pytest.mark.skipif(
    BACKEND != "sqlite", reason="the contract is the same on both: checked once, on SQLite"
)


@pytest.fixture(scope="module")
def demo_server() -> Iterator[tuple[str, dict[str, str], Path]]:
    folder = Path(tempfile.mkdtemp(prefix="tiantian-contract-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder}/demo.sqlite3",
        "TIANTIAN_NOW": TEST_NOW,
        "TIANTIAN_LOGINS_PER_MINUTE": "100000",
        "TIANTIAN_ACCESS_LOG": "0",
    }
    tiantian = [sys.executable, "-m", "advisor_api.cli"]
    for command in (["migrate"], ["seed-demo"]):
        subprocess.run([*tiantian, *command], cwd=REPO, env=env, check=True, capture_output=True)
    with (folder / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [*tiantian, "serve", "--port", str(port), "--no-scheduler"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/health/ready").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    # Every role signs in before any run: generated sign-ins may lock a phone out.
    headers = {role: credentials(base, role) for role in (*ROLES, "pos", "channel")}
    yield base, headers, folder
    proc.terminate()
    proc.wait(timeout=30)
    errors = (folder / "server.log").read_text(errors="replace")
    shutil.rmtree(folder, ignore_errors=True)
    assert "Traceback" not in errors, errors[-4000:]


def credentials(base: str, role: str) -> str:
    if role == "pos":
        return "X-API-Key: ttpos_demo_s0001"
    if role == "channel":  # the demo mini-program's O2O key
        return "X-API-Key: ttch_demo_miniprogram"
    r = httpx.post(f"{base}/auth/login", json={"phone": ROLES[role], "password": DEMO_PASSWORD})
    r.raise_for_status()
    return f"Authorization: Bearer {r.json()['access_token']}"


@pytest.mark.parametrize("role", ["hq", "region", "owner", "advisor", "pos", "channel"])
def test_generated_requests_find_nothing(
    demo_server: tuple[str, dict[str, str], Path], role: str
) -> None:
    base, headers, folder = demo_server
    done = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(REPO / "tests" / "schemathesis.toml"),
            "run",
            f"{base}/schema/openapi.json",
            "-H",
            headers[role],
            "--checks",
            "all",
            "--max-time",
            str(SECONDS),
            "--seed",
            "20261120",
            "--workers",
            "1",
            "--no-color",
        ],
        cwd=folder,  # its cache of crashes stays out of the checkout
        capture_output=True,
        text=True,
        timeout=SECONDS * 10 + 120,
        check=False,
    )
    summary = done.stdout[-6000:]
    assert done.returncode == 0, f"schemathesis as {role} found something:\n{summary}"
    assert " passed" in summary
