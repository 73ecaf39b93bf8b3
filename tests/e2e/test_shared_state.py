"""Two ``egide serve`` processes sharing one state (PostgreSQL, or one SQLite file):
one quota, one audit chain."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from egide.audit.checkpoints import load_public_key
from egide.audit.verify import verify_connection
from support.egide_process import start_egide

LIMIT = 40


@pytest.mark.parametrize("store", ["postgres", "sqlite"])
def test_two_servers_keep_one_quota_and_one_unforked_audit_chain(request, store, tmp_path):
    url = None
    if store == "postgres":
        url = request.getfixturevalue("postgres_server").create_database("shared_state")
    setting = f'database_url = "{url}"' if url else ""
    config = f"""
{setting}
default_models = false
audit_checkpoint_every = 50
[[models]]
id = "echo"
backend = "fake"
capabilities = ["chat"]
"""
    home = tmp_path / "home"
    first = start_egide(home, config)
    second = start_egide(home, config)  # same state dir: same admin key and signing key
    try:
        with _connect(url, home) as conn:
            key_id = conn.execute("SELECT id FROM api_keys").fetchone()[0]
        r = httpx.put(
            f"{first.api}/admin/quotas/key:{key_id}",
            headers=first.headers(),
            json={"requests_per_min": LIMIT},
        )
        assert r.status_code == 200, r.text
        if time.time() % 60 > 45:  # keep the burst inside one quota minute
            time.sleep(61 - time.time() % 60)

        async def burst() -> list[int]:
            body = {"model": "echo", "messages": [{"role": "user", "content": "bonjour"}]}
            limits = httpx.Limits(max_connections=16)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                calls = [
                    client.post(
                        f"{server.api}/chat/completions", json=body, headers=server.headers()
                    )
                    for _ in range(60)
                    for server in (first, second)
                ]
                return [r.status_code for r in await asyncio.gather(*calls)]

        statuses = asyncio.run(burst())
        assert set(statuses) == {200, 429}
        assert LIMIT <= statuses.count(200) <= LIMIT + 1
    finally:
        first.stop()
        second.stop()
    with _connect(url, home) as conn:
        report = verify_connection(conn, load_public_key(home / "audit-signing.key"))
        events = dict(conn.execute("SELECT event, COUNT(*) FROM audit_records GROUP BY event"))
    assert report.ok, report.summary()
    export = home / "audit.jsonl"
    config_args = ["--config", str(home / "egide.toml")]
    for args in (
        ["verify"],
        ["export", "--output", str(export)],
        ["verify", "--input", str(export)],
    ):
        cli = subprocess.run(
            [sys.executable, "-m", "egide.main", "audit", *args, *config_args],
            capture_output=True,
            text=True,
            env={**os.environ, "EGIDE_HOME": str(home)},
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "intact" in cli.stdout and export.stat().st_size > 0
    assert events["auth-succeeded"] >= 120 and events["inference"] == statuses.count(200)
    assert events["checkpoint"] >= 2


def _connect(url, home):
    if url:
        return psycopg.connect(url)
    return contextlib.closing(sqlite3.connect(home / "egide.db"))
