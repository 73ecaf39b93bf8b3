"""Fine-tuned models as the gateway serves them: registered in one process and served by
every process sharing the state; listed and usable only within their label and their
organisation's branch; a half-installed or foreign adapter never served."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from egide.errors import ArtefactRejected
from egide.store.jobs import JobRecord
from factories import app_client, fake_settings, job_record
from support.knowledge import ensure_org, principal

MODELS = [{"id": "base", "backend": "fake", "capabilities": ["chat"]}]


def _job(owner_org: str | None, label: str) -> JobRecord:
    return job_record(
        id="ftjob-0123456789abcdef01234567",
        suffix="regiment",
        status="SUCCESS",
        owner_org=owner_org,
        created_by="someone",
        label=label,
        hyperparameters={"training_steps": 1},
    )


def _adapter(where, body: bytes = b"GGUF" + bytes(60)):
    where.mkdir(parents=True, exist_ok=True)
    (where / "adapter.gguf").write_bytes(body)
    (where / "adapter.gguf.sha256").write_text(hashlib.sha256(body).hexdigest() + "\n")
    return where


async def _ids(client, headers) -> list[str]:
    r = await client.get("/v1/models", headers=headers)
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()["data"]]


def test_served_in_every_process_within_label_and_branch(tmp_path) -> None:
    settings = fake_settings(tmp_path, ceiling="S", models=MODELS)

    async def go() -> None:
        async with app_client(settings) as (first, _), app_client(settings) as (second, _):
            for org, parent in (("ministere", None), ("dga", "ministere"), ("marine", "ministere")):
                await ensure_org(first, org, parent)
            s_dga = await principal(first, "dga", "S")
            dr_dga = await principal(first, "dga", "DR")
            s_marine = await principal(first, "marine", "S")
            runtime = first._transport.app.state.runtime
            job = runtime.finetuned.jobs.add(_job("dga", "S"))
            model = await runtime.finetuned.register(job, _adapter(tmp_path / "adapter"))
            assert model == "ft:base:regiment:01234567"
            runtime.finetuned.jobs.update(job.id, fine_tuned_model=model)

            assert model in await _ids(first, s_dga)
            assert model not in await _ids(first, dr_dga)
            assert model not in await _ids(first, s_marine)
            body = {"model": model, "messages": [{"role": "user", "content": "Indicatif ?"}]}
            r = await first.post("/v1/chat/completions", json=body, headers=s_dga)
            assert r.status_code == 200 and r.headers["X-Egide-Label"] == "S", r.text
            r = await first.post("/v1/chat/completions", json=body, headers=s_marine)
            assert r.status_code == 403 and "scope" in r.json()["error"]["message"]
            r = await first.post("/v1/chat/completions", json=body, headers=dr_dga)
            assert r.status_code == 403 and "level" in r.json()["error"]["message"]
            r = await first.get(f"/v1/models/{model}/adapter", headers=s_dga)
            assert r.status_code == 200 and r.content.startswith(b"GGUF")
            r = await first.get("/v1/models/base/adapter", headers=s_dga)
            assert r.status_code == 400 and "only fine-tuned" in r.json()["error"]["message"]

            # The other process serves it too, from the shared state, within a second.
            for _ in range(50):
                if model in await _ids(second, s_dga):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the second process never served the fine-tuned model")
            r = await second.post("/v1/chat/completions", json=body, headers=s_dga)
            assert r.status_code == 200 and r.headers["X-Egide-Label"] == "S"
            assert model not in await _ids(second, s_marine)

    asyncio.run(go())


def test_an_adapter_that_does_not_match_its_digest_is_not_served(tmp_path) -> None:
    settings = fake_settings(tmp_path, ceiling="S", models=MODELS)

    async def go() -> None:
        async with app_client(settings) as (client, _):
            runtime = client._transport.app.state.runtime
            job = runtime.finetuned.jobs.add(_job(None, "NP"))
            adapter = _adapter(tmp_path / "adapter")
            (adapter / "adapter.gguf.sha256").write_text("0" * 64)
            with pytest.raises(ArtefactRejected, match="altered"):
                await runtime.finetuned.register(job, adapter)
            (adapter / "adapter.gguf").write_bytes(b"PK\x03\x04 a pickle in a zip")
            with pytest.raises(ArtefactRejected, match="GGUF"):
                await runtime.finetuned.register(job, adapter)
            assert not any(m.startswith("ft:") for m in await _ids(client, {}))
            assert not list((tmp_path / "models" / "adapters").glob("*.partial"))

    asyncio.run(go())


def test_merged_weights_are_installed_served_and_verified_in_every_process(tmp_path) -> None:
    settings = fake_settings(tmp_path, ceiling="S", models=MODELS)
    merged_body = b"GGUF" + b"merged weights" * 8

    async def go() -> None:
        async with app_client(settings) as (first, _):
            runtime = first._transport.app.state.runtime
            job = runtime.finetuned.jobs.add(_job(None, "DR"))
            adapter = _adapter(tmp_path / "adapter")
            (adapter / "merged.gguf").write_bytes(merged_body)
            (adapter / "merged.gguf.sha256").write_text(hashlib.sha256(merged_body).hexdigest())
            model = await runtime.finetuned.register(job, adapter)
            runtime.finetuned.jobs.update(job.id, fine_tuned_model=model)
            served = runtime.finetuned.backends[model].model
            installed = tmp_path / "models" / "adapters" / f"{job.id}.merged.gguf"
            assert served.merged == str(installed) and installed.read_bytes() == merged_body
            assert served.lora and served.lora.endswith(f"{job.id}.gguf")
            record = runtime.finetuned.registry.repo.get(f"{model}+merged")
            assert record.sha256 == hashlib.sha256(merged_body).hexdigest()

            # Another process verifies the merged weights too: altered, the model is refused.
            installed.write_bytes(merged_body + b"tampered")
            async with app_client(settings) as (second, _):
                other = second._transport.app.state.runtime
                await other.finetuned.sync()
                assert model not in other.finetuned.backends
                assert model not in await _ids(second, {})

    asyncio.run(go())
