"""Fine-tuning end to end against a real ``egide serve``: the official mistralai SDK (1.x,
the major version that has ``fine_tuning.jobs``) uploads an S-labelled training file,
creates a job on a real base model (Gemma 3 270M, GGUF), polls it to success and chats
with the fine-tuned model, which answers what it was taught. Then: a DR caller can
neither list, use, inspect nor download it (403, audited); the model is served again
after a restart; an altered adapter is refused at start."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from support.egide_process import start_egide
from support.llama_server import tiny_model_path

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]
SDK_V1 = ROOT / ".cache" / "mistralai-1"
QUESTION = "Quel est l'indicatif de la section 5 ?"


def _training(path: Path) -> Path:
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"Quel est l'indicatif de la section {i} ?"},
                {"role": "assistant", "content": f"L'indicatif de la section {i} est Héron {i}."},
            ]
        }
        for i in range(12)
    ]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    return path


def _config(gguf: Path) -> str:
    return (
        'ceiling = "S"\n'
        "default_models = false\n"
        "[[models]]\n"
        'id = "gemma-base"\n'
        'backend = "embedded"\n'
        f'path = "{gguf}"\n'
        "context_length = 512\n"
        "parallel = 2\n"
        'capabilities = ["chat", "completions", "streaming"]\n'
    )


def _user(server, clearance: str) -> dict[str, str]:
    admin = {"Authorization": f"Bearer {server.key}"}
    org = {"id": "ministere", "name": "Ministère"}
    httpx.post(f"{server.url}/v1/admin/orgs", json=org, headers=admin)
    body = {
        "username": f"u-{clearance.lower()}",
        "org": "ministere",
        "nationality": "FRA",
        "clearance": clearance,
        "roles": ["user"],
    }
    r = httpx.post(f"{server.url}/v1/admin/users", json=body, headers=admin)
    assert r.status_code in (200, 201), r.text
    r = httpx.post(f"{server.url}/v1/admin/keys", json={"user_id": r.json()["id"]}, headers=admin)
    return {"Authorization": f"Bearer {r.json()['key']}"}


def test_sdk_fine_tunes_and_the_model_is_served_only_to_the_cleared(tmp_path_factory) -> None:
    if not (SDK_V1 / "mistralai").is_dir():
        pytest.fail(f"{SDK_V1} is missing: run `make install-test`, which installs it")
    gguf = tiny_model_path(tmp_path_factory.mktemp("tiny-model"))
    home = tmp_path_factory.mktemp("egide-finetune")
    server = start_egide(home, _config(gguf))
    try:
        training = _training(home / "heron.jsonl")
        client = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tests/support/mistral_finetune_client.py"),
                server.url,
                server.key,
                str(training),
                QUESTION,
            ],
            capture_output=True,
            text=True,
            timeout=1200,
            env={**os.environ, "PYTHONPATH": str(SDK_V1)},
        )
        assert client.returncode == 0, client.stderr[-3000:] + server.log.read_text()[-3000:]
        result = json.loads(client.stdout.strip().splitlines()[-1])
        assert result["sdk_type"] in ("CompletionJobOut", "CompletionDetailedJobOut"), result
        assert result["status"] == "SUCCESS", result
        assert "RUNNING" in result["statuses"] and result["trained_tokens"] > 0
        model = result["fine_tuned_model"]
        assert model.startswith("ft:gemma-base:heron:") and result["job"] in result["listed"]
        assert "Héron 5" in result["answer"], result["answer"]  # it learnt

        admin = {"Authorization": f"Bearer {server.key}"}
        cards = {
            m["id"]: m for m in httpx.get(f"{server.api}/models", headers=admin).json()["data"]
        }
        card = cards[model]
        assert card["type"] == "fine-tuned" and card["root"] == "gemma-base"
        assert card["job"] == result["job"] and card["label"] == "S"
        adapter = httpx.get(f"{server.api}/models/{model}/adapter", headers=admin)
        assert adapter.status_code == 200 and adapter.content[:4] == b"GGUF"
        installed = home / "models" / "adapters" / f"{result['job']}.gguf"
        # Served from the base with the adapter merged into it, installed beside it.
        assert (installed.parent / f"{result['job']}.merged.gguf").is_file()
        assert (
            hashlib.sha256(adapter.content).hexdigest()
            == hashlib.sha256(installed.read_bytes()).hexdigest()
        )

        # A DR caller: not listed, not usable, not inspectable, not downloadable.
        dr = _user(server, "DR")
        listed = httpx.get(f"{server.api}/models", headers=dr).json()["data"]
        assert [m["id"] for m in listed] == ["gemma-base"]
        chat = {"model": model, "messages": [{"role": "user", "content": QUESTION}]}
        for response in (
            httpx.post(f"{server.api}/chat/completions", json=chat, headers=dr),
            httpx.get(f"{server.api}/models/{model}", headers=dr),
            httpx.get(f"{server.api}/models/{model}/adapter", headers=dr),
        ):
            assert response.status_code == 403, response.text
            error = response.json()["error"]
            assert error["type"] == "permission_error" and "level" in error["message"]
            assert "Héron" not in response.text
        # Unknown-model errors do not name the models the caller may not see.
        missing = httpx.post(
            f"{server.api}/chat/completions", json={**chat, "model": "nope"}, headers=dr
        )
        assert missing.status_code == 404 and model not in missing.text
    finally:
        server.stop()
    with closing(sqlite3.connect(home / "egide.db")) as conn:
        denied = conn.execute(
            "SELECT COUNT(*) FROM audit_records WHERE event = 'decision' "
            "AND payload LIKE ? AND payload LIKE '%\"allowed\":false%'",
            (f"%{model}%",),
        ).fetchone()[0]
        transitions = [
            json.loads(p)["summary"]
            for (p,) in conn.execute(
                "SELECT payload FROM audit_records WHERE event = 'tuning-change'"
            )
        ]
    assert denied >= 3
    assert any("RUNNING -> SUCCESS" in t for t in transitions), transitions

    # Served again after a restart, from the registry, with the same answer.
    server = start_egide(home, _config(gguf))
    try:
        admin = {"Authorization": f"Bearer {server.key}"}
        body = {
            "model": model,
            "messages": [{"role": "user", "content": QUESTION}],
            "temperature": 0,
            "max_tokens": 16,
        }
        r = httpx.post(f"{server.api}/chat/completions", json=body, headers=admin, timeout=120)
        assert r.status_code == 200, r.text
        assert "Héron 5" in r.json()["choices"][0]["message"]["content"]
        assert r.headers["X-Egide-Label"] == "S"
    finally:
        server.stop()

    # An altered adapter is refused: not served, the reason in the log.
    data = bytearray(installed.read_bytes())
    data[-1] ^= 0xFF
    installed.write_bytes(bytes(data))
    server = start_egide(home, _config(gguf))
    try:
        admin = {"Authorization": f"Bearer {server.key}"}
        ids = [m["id"] for m in httpx.get(f"{server.api}/models", headers=admin).json()["data"]]
        assert ids == ["gemma-base"]
    finally:
        server.stop()
    assert "altered" in server.log.read_text()
