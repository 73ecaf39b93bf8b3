"""``/v1/fine_tuning/jobs``: creation checks, labels from the training files, visibility
within clearance, cancellation, and the error envelope."""

from __future__ import annotations

import asyncio
import json

import pytest

from factories import app_client, fake_settings
from support.knowledge import ensure_org, principal

MODELS = [{"id": "base", "backend": "fake", "capabilities": ["chat"]}]
LINE = {
    "messages": [
        {"role": "user", "content": "Indicatif ?"},
        {"role": "assistant", "content": "Aigle 6"},
    ]
}
TRAINING = (json.dumps(LINE, ensure_ascii=False) + "\n").encode()


@pytest.fixture
def settings(tmp_path):
    return fake_settings(tmp_path, ceiling="S", models=MODELS)


async def _file(client, headers, label):
    r = await client.post(
        "/v1/files",
        files={"file": ("train.jsonl", TRAINING)},
        data={"purpose": "fine-tune", "label": label},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_job_label_is_the_join_of_its_files_and_bounds_who_sees_it(settings) -> None:
    async def go():
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            s_user = await principal(client, "ministere", "S")
            dr_user = await principal(client, "ministere", "DR")
            s_file = await _file(client, s_user, "S")
            dr_file = await _file(client, dr_user, "DR")

            body = {
                "model": "base",
                "training_files": [{"file_id": dr_file, "weight": 1}],
                "validation_files": [s_file],
                "hyperparameters": {"training_steps": 5, "learning_rate": 0.0002},
                "suffix": "escadron",
                "auto_start": False,
            }
            r = await client.post("/v1/fine_tuning/jobs", json=body, headers=s_user)
            assert r.status_code == 200, r.text
            job = r.json()
            assert job["status"] == "QUEUED" and job["label"] == "S"
            assert job["hyperparameters"]["training_steps"] == 5 and job["object"] == "job"

            # A DR caller cannot use an S file, nor see the S job.
            r = await client.post("/v1/fine_tuning/jobs", json=body, headers=dr_user)
            assert r.status_code == 403 and "level" in r.json()["error"]["message"]
            assert (await client.get("/v1/fine_tuning/jobs", headers=dr_user)).json()["data"] == []
            r = await client.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=dr_user)
            assert r.status_code == 403
            listed = (await client.get("/v1/fine_tuning/jobs", headers=s_user)).json()
            assert [j["id"] for j in listed["data"]] == [job["id"]] and listed["total"] == 1

            r = await client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=s_user)
            assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
            events = [e["data"]["status"] for e in r.json()["events"]]
            assert events[0] == "QUEUED" and events[-1] == "CANCELLED"
            r = await client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=s_user)
            assert r.status_code == 409 and "CANCELLED" in r.json()["error"]["message"]

            runtime = client._transport.app.state.runtime
            runtime.audit.flush()
            log = " ".join(
                x[0] for x in runtime.audit.db.query("SELECT payload FROM audit_records")
            )
            assert "job-created" in log and "job-transition" in log

    asyncio.run(go())


def test_bad_job_requests_get_clear_errors(settings) -> None:
    async def go():
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            user = await principal(client, "ministere", "S")
            file_id = await _file(client, user, "NP")
            ok = {"model": "base", "training_files": [file_id]}
            cases = [
                ({**ok, "model": "nope"}, 404, "base models: base"),
                ({**ok, "training_files": []}, 400, "at least one training file"),
                ({**ok, "training_files": ["file-missing"]}, 404, "does not exist"),
                ({**ok, "hyperparameters": {"temperature": 1}}, 400, "unknown hyperparameter"),
                ({**ok, "hyperparameters": {"training_steps": 0}}, 400, "between 1"),
                ({**ok, "hyperparameters": {"learning_rate": "fast"}}, 400, "a number"),
                ({**ok, "suffix": "Bad Suffix"}, 400, "suffix"),
                (
                    {**ok, "training_files": [{"file_id": file_id, "weight": 2}]},
                    400,
                    "only 1 is supported",
                ),
                ({"training_files": [file_id]}, 400, "model"),
            ]
            for body, status, words in cases:
                r = await client.post("/v1/fine_tuning/jobs", json=body, headers=user)
                assert r.status_code == status, (body, r.text)
                assert words in r.json()["error"]["message"], r.text
            r = await client.post(
                "/v1/fine_tuning/jobs",
                json={"model": "base", "training_file": file_id},
                headers=user,
            )
            assert r.status_code == 200 and r.json()["hyperparameters"]["epochs"] == 1.0
            r = await client.get("/v1/fine_tuning/jobs/ftjob-none", headers=user)
            assert r.status_code == 404

    asyncio.run(go())
