"""``egide orgs | users | keys`` against a running ``egide serve`` on the fake backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx

from support.egide_process import start_egide

FAKE_ONLY = """
default_models = false
ceiling = "S"
[[models]]
id = "echo"
backend = "fake"
capabilities = ["chat", "streaming"]
"""


def test_admin_commands_against_a_running_server(tmp_path) -> None:
    server = start_egide(tmp_path, FAKE_ONLY)
    try:

        def egide(*args: str) -> subprocess.CompletedProcess[str]:
            env = {**os.environ, "EGIDE_HOME": str(tmp_path), "COLUMNS": "220"}
            return subprocess.run(
                [sys.executable, "-m", "egide.main", *args, "--url", server.url],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )

        assert egide("orgs", "create", "minarm", "--name", "Ministère").returncode == 0
        out = egide("orgs", "create", "dga", "--name", "DGA", "--parent", "minarm")
        assert out.returncode == 0 and "dga" in out.stdout, out.stderr
        out = egide("users", "create", "alice", "--org", "dga", "--clearance", "DR")
        assert out.returncode == 0, out.stderr
        user_id = re.search(r"\b([0-9a-f]{16})\b", out.stdout).group(1)
        out = egide("keys", "create", user_id, "--name", "laptop")
        assert out.returncode == 0, out.stderr
        key = re.search(r"egk_[A-Za-z0-9_-]{40,}", out.stdout).group(0)
        assert out.stdout.count(key) == 1
        models = httpx.get(server.api + "/models", headers={"Authorization": f"Bearer {key}"})
        assert models.status_code == 200

        listed = egide("keys", "list", "--org", "dga")
        assert listed.returncode == 0 and key[:12] in listed.stdout and key not in listed.stdout

        bad = egide("users", "create", "bob", "--org", "nowhere", "--clearance", "DR")
        assert bad.returncode == 1 and bad.stderr.startswith("error 404:"), bad.stderr
    finally:
        server.stop()
