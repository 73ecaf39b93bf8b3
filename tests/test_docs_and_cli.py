"""Generated docs are current; the CLI lists every command; config errors are clear."""

from __future__ import annotations

import subprocess
import sys

import pytest

from egide import docgen
from egide.config import load_settings
from egide.errors import ConfigError


@pytest.mark.parametrize("name", sorted(docgen.GENERATED))
def test_generated_docs_are_current(name) -> None:
    current = (docgen.DOCS / name).read_text()
    assert current == docgen.GENERATED[name](), f"run: python -m egide.docgen ({name} is stale)"


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "egide.main", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("serve", "models", "chat"):
        assert command in out


def test_models_list_without_server_reads_configuration(tmp_path) -> None:
    env = {"EGIDE_HOME": str(tmp_path), "EGIDE_URL": "http://127.0.0.1:9", "PATH": "/usr/bin"}
    import os

    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-m", "egide.main", "models", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "qwen2.5-coder-0.5b-instruct" in out and "configuration" in out


def test_bad_config_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "egide.toml"
    bad.write_text('[[models]]\nid = "x"\nbackend = "quantum"\n')
    with pytest.raises(ConfigError, match=r"models\.0\.backend"):
        load_settings(bad, env={})
    bad.write_text("port = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_serve_with_bad_config_exits_with_message(tmp_path) -> None:
    bad = tmp_path / "egide.toml"
    bad.write_text('[[models]]\nid = "x"\nbackend = "openai"\n')
    result = subprocess.run(
        [sys.executable, "-m", "egide.main", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        env={"EGIDE_HOME": str(tmp_path), "PATH": "/usr/bin"},
    )
    assert result.returncode == 2
    assert "deployments" in result.stderr


def test_declared_model_overrides_the_default_of_the_same_id(tmp_path) -> None:
    cfg = tmp_path / "egide.toml"
    cfg.write_text(
        '[[models]]\nid = "qwen2.5-coder-0.5b-instruct"\nbackend = "fake"\nparallel = 2\n'
    )
    models = load_settings(cfg, env={"EGIDE_HOME": str(tmp_path)}).all_models()
    assert [(m.id, m.backend) for m in models] == [
        ("multilingual-e5-small", "embedder"),
        ("qwen2.5-coder-0.5b-instruct", "fake"),
    ]
