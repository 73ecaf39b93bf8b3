"""The CLI as a person uses it: ``egide chat`` streams from a running server or
in-process; ``egide serve`` prints the admin key once, on first start only."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support.egide_process import start_egide

FAKE_ONLY = """
default_models = false
[[models]]
id = "echo"
backend = "fake"
capabilities = ["chat", "streaming"]
"""


def _egide(*args: str, home, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "EGIDE_HOME": str(home), **env}
    return subprocess.run(
        [sys.executable, "-m", "egide.main", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


@pytest.mark.model
def test_chat_streams_from_a_running_server(default_server) -> None:
    result = _egide(
        "chat",
        "Quelle est la capitale de la France ? Un mot.",
        "--temperature",
        "0",
        "--url",
        default_server.url,
        "--key",
        default_server.key,
        home=default_server.home,
    )
    assert result.returncode == 0, result.stderr
    assert "paris" in result.stdout.lower()


def test_chat_in_process_and_errors(tmp_path) -> None:
    config = tmp_path / "egide.toml"
    config.write_text(FAKE_ONLY)
    result = _egide(
        "chat",
        "bonjour",
        "--model",
        "echo",
        "--in-process",
        "--config",
        str(config),
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "user: bonjour"
    result = _egide(
        "chat",
        "bonjour",
        "--model",
        "nope",
        "--in-process",
        "--config",
        str(config),
        home=tmp_path,
    )
    assert result.returncode == 1 and "does not exist" in result.stderr
    result = _egide(
        "chat",
        "bonjour",
        "--model",
        "echo",
        "--temperature",
        "7",
        "--in-process",
        "--config",
        str(config),
        home=tmp_path,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert "temperature: Input should be less than or equal to 2" in said
    assert "Fix these fields and retry" in said


def test_admin_key_printed_once_on_first_start(tmp_path) -> None:
    first = start_egide(tmp_path, FAKE_ONLY)
    first.stop()
    key = (tmp_path / "admin.key").read_text().strip()
    assert key in first.log.read_text()
    second = start_egide(tmp_path, FAKE_ONLY)
    second.stop()
    assert key not in second.log.read_text()
    assert (tmp_path / "admin.key").read_text().strip() == key
