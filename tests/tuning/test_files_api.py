"""``/v1/files``: upload with a label, list, get, download, delete — within clearance and
organisation, with markings inside checked like documents."""

from __future__ import annotations

import asyncio
import json

import pytest

from factories import app_client, fake_settings
from support.knowledge import ensure_org, principal

MODELS = [{"id": "echo", "backend": "fake", "capabilities": ["chat"]}]
LINE = {
    "messages": [
        {"role": "user", "content": "Indicatif ?"},
        {"role": "assistant", "content": "Aigle 6"},
    ]
}
TRAINING = "\n".join(json.dumps(LINE, ensure_ascii=False) for _ in range(3)) + "\n"


@pytest.fixture
def settings(tmp_path):
    return fake_settings(tmp_path, ceiling="S", models=MODELS)


async def _upload(client, headers, text: str, label: str | None = None, name="train.jsonl"):
    data = {"purpose": "fine-tune", **({"label": label} if label else {})}
    return await client.post(
        "/v1/files", files={"file": (name, text.encode())}, data=data, headers=headers
    )


def test_files_are_labelled_and_read_within_clearance(settings) -> None:
    async def go():
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            await ensure_org(client, "unite", parent="ministere")
            await ensure_org(client, "autre")
            s_user = await principal(client, "unite", "S")
            dr_user = await principal(client, "unite", "DR")
            elsewhere = await principal(client, "autre", "S")

            r = await _upload(client, s_user, TRAINING, "S")
            assert r.status_code == 200, r.text
            s_file = r.json()
            assert s_file["label"] == "S" and s_file["num_lines"] == 3
            assert s_file["bytes"] == len(TRAINING.encode()) and s_file["purpose"] == "fine-tune"
            r = await _upload(client, dr_user, TRAINING, "DR")
            dr_file = r.json()

            listed = (await client.get("/v1/files", headers=dr_user)).json()
            assert [f["id"] for f in listed["data"]] == [dr_file["id"]]
            listed = (await client.get("/v1/files", headers=s_user)).json()
            assert {f["id"] for f in listed["data"]} == {s_file["id"], dr_file["id"]}
            assert (await client.get("/v1/files", headers=elsewhere)).json()["data"] == []

            for path in (f"/v1/files/{s_file['id']}", f"/v1/files/{s_file['id']}/content"):
                r = await client.get(path, headers=dr_user)
                assert r.status_code == 403 and "level" in r.json()["error"]["message"]
            r = await client.get(f"/v1/files/{s_file['id']}/content", headers=s_user)
            assert r.status_code == 200 and r.content == TRAINING.encode()
            assert r.headers["x-egide-label"] == "S"
            r = await client.get(f"/v1/files/{dr_file['id']}", headers=elsewhere)
            assert r.status_code == 403 and "scope" in r.json()["error"]["message"]

            r = await client.delete(f"/v1/files/{s_file['id']}", headers=dr_user)
            assert r.status_code == 403
            r = await client.delete(f"/v1/files/{s_file['id']}", headers=s_user)
            assert r.status_code == 200 and r.json()["deleted"] is True
            assert (
                await client.get(f"/v1/files/{s_file['id']}", headers=s_user)
            ).status_code == 404
            runtime = client._transport.app.state.runtime
            assert not (settings.home / "files" / s_file["id"]).exists()
            runtime.audit.flush()
            log = " ".join(
                r[0] for r in runtime.audit.db.query("SELECT payload FROM audit_records")
            )
            assert "file-uploaded" in log and "file-deleted" in log and '"allowed":false' in log

    asyncio.run(go())


def test_bad_uploads_are_refused_and_nothing_is_kept(settings) -> None:
    async def go():
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            user = await principal(client, "ministere", "S")
            marked = json.dumps(
                {"messages": [{"role": "user", "content": "SECRET : position du PC"}]}
            )
            cases = [
                (await _upload(client, user, marked, "DR"), 422, "spillage_refused"),
                (await _upload(client, user, TRAINING, "TS"), 403, "permission_denied"),
                (await _upload(client, user, TRAINING, "PAS-UN-NIVEAU"), 400, None),
                (
                    await client.post(
                        "/v1/files",
                        files={"file": ("x.jsonl", b"{}")},
                        data={"purpose": "batch"},
                        headers=user,
                    ),
                    400,
                    None,
                ),
            ]
            for response, status, code in cases:
                assert response.status_code == status, response.text
                assert code is None or response.json()["error"]["code"] == code
            r = await client.post(
                "/v1/files", files={"file": ("bin.jsonl", b"\xff\xfe\x00")}, headers=user
            )
            assert r.status_code == 400 and "UTF-8" in r.json()["error"]["message"]
            listed = (await client.get("/v1/files", headers=user)).json()["data"]
            assert listed == []
            stored = settings.home / "files"
            assert not stored.exists() or not any(stored.iterdir())

    asyncio.run(go())
