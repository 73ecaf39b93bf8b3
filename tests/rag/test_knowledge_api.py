"""Libraries, documents and search through the HTTP API, in-process over fake models."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from factories import app_client, fake_settings
from support.knowledge import create_library, ensure_org, principal, upload, wait_indexed

MODELS = [
    {
        "id": "echo",
        "backend": "fake",
        "context_length": 20_000,
        "capabilities": ["chat", "streaming", "embeddings"],
    }
]

REPORT = """# Compte rendu de maintenance

## Moteur

Le VBL n° 4521 présente une fuite d'huile sur le carter moteur. Remplacement du joint prévu.

## Transmission

La boîte de vitesses du VBL n° 4522 a été révisée le 12 mars ; aucune anomalie.
"""


@pytest.fixture
def settings(tmp_path):
    return fake_settings(tmp_path, ceiling="S", models=MODELS, rag_min_similarity=-1.0)


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path):
    """Settings on each kind of store."""
    extra = {}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        extra["database_url"] = server.create_database(f"k{uuid.uuid4().hex[:12]}")
    return fake_settings(tmp_path, ceiling="S", models=MODELS, rag_min_similarity=-1.0, **extra)


def run(settings, check):
    async def go():
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            await check(client, client._transport.app.state.runtime)

    asyncio.run(go())


def _all_text(runtime) -> str:
    """Every row of every table of the state database, as text."""
    db = runtime.db
    if db.dialect == "sqlite":
        listing = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        listing = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    tables = [r[0] for r in db.query(listing)]
    dump = []
    for table in tables:
        for row in db.query(f"SELECT * FROM {table}"):
            dump.append(" ".join(str(v) for v in tuple(row)))
    runtime.audit.flush()
    for row in runtime.audit.db.query("SELECT payload FROM audit_records"):
        dump.append(row[0])
    return "\n".join(dump)


def test_library_lifecycle_upload_search_delete(any_store) -> None:
    settings = any_store

    async def check(client, runtime):
        owner = await principal(client, "ministere", "S")
        lib = await create_library(client, owner, name="maintenance", ceiling="DR")
        assert lib["ceiling"] == "DR" and lib["owner_org"] == "ministere"
        r = await upload(client, owner, lib["id"], "cr-maintenance.md", REPORT, "DR")
        assert r.status_code == 201, r.text
        doc = r.json()
        assert doc["label"] == "DR" and doc["process_status"] == "in_progress"
        statuses = await wait_indexed(client, owner, lib["id"], [doc["id"]])
        assert statuses[doc["id"]]["process_status"] == "done"
        assert statuses[doc["id"]]["progress"]["chunks_done"] >= 1

        r = await client.get(f"/v1/libraries/{lib['id']}/documents", headers=owner)
        assert r.json()["pagination"]["total_items"] == 1
        r = await client.post(
            "/v1/search", json={"query": "fuite d'huile carter", "mode": "bm25"}, headers=owner
        )
        assert r.status_code == 200 and r.headers["x-egide-label"] == "DR"
        top = r.json()["data"][0]
        assert "fuite d'huile" in top["text"] and top["headings"][-1] == "Moteur"
        assert top["document_name"] == "cr-maintenance.md" and top["label"] == "DR"
        r = await client.get(
            f"/v1/libraries/{lib['id']}/documents/{doc['id']}/text_content", headers=owner
        )
        assert "4522" in r.json()["text"]

        r = await client.delete(f"/v1/libraries/{lib['id']}/documents/{doc['id']}", headers=owner)
        assert r.status_code == 204
        r = await client.post("/v1/search", json={"query": "fuite d'huile"}, headers=owner)
        assert r.json()["data"] == []
        assert "fuite d'huile" not in _all_text(runtime)
        assert len(runtime.gateway.knowledge.retriever.index) == 0
        log = _all_text(runtime)
        assert "document-deleted" in log and "document-indexed" in log

        r = await client.delete(f"/v1/libraries/{lib['id']}", headers=owner)
        assert r.status_code == 200 and r.json()["id"] == lib["id"]
        r = await client.get(f"/v1/libraries/{lib['id']}", headers=owner)
        assert r.status_code == 404

    run(settings, check)


def test_spillage_at_ingest_leaves_nothing(any_store) -> None:
    settings = any_store

    async def check(client, runtime):
        owner = await principal(client, "ministere", "S")
        lib = await create_library(client, owner, name="rapports", ceiling="S")
        before = len(runtime.gateway.knowledge.retriever.index or [])
        secret = "SECRET\n\nLe dépôt clandestin KESTREL-9 se trouve au nord du col.\n\nSECRET\n"
        r = await upload(client, owner, lib["id"], "note-kestrel.txt", secret, "DR")
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "spillage_refused" and "S (SECRET)" in error["message"]
        assert "KESTREL" not in error["message"]
        dump = _all_text(runtime)
        assert "KESTREL" not in dump and "note-kestrel" not in dump
        assert runtime.db.query("SELECT COUNT(*) FROM documents")[0][0] == 0
        assert runtime.db.query("SELECT COUNT(*) FROM chunks")[0][0] == 0
        assert len(runtime.gateway.knowledge.retriever.index or []) == before
        # The same document, labelled S, is accepted.
        r = await upload(client, owner, lib["id"], "note-kestrel.txt", secret, "S")
        assert r.status_code == 201, r.text

    run(settings, check)


def test_upload_labels_are_bounded_by_clearance_and_ceilings(settings) -> None:
    async def check(client, runtime):
        owner = await principal(client, "ministere", "DR")
        lib = await create_library(client, owner, name="dr", ceiling="DR")
        r = await upload(client, owner, lib["id"], "a.txt", "Texte ordinaire.", "S")
        assert r.status_code == 403 and "level" in r.json()["error"]["message"]
        admin_s = await principal(client, "ministere", "S")
        r = await upload(client, admin_s, lib["id"], "a.txt", "Texte ordinaire.", "S")
        assert r.status_code == 403 and "library ceiling" in r.json()["error"]["message"]
        r = await client.post(
            "/v1/libraries", json={"name": "trop haut", "ceiling": "TS"}, headers=admin_s
        )
        assert r.status_code == 403 and "ceiling" in r.json()["error"]["message"]

    run(settings, check)


def test_relabel_rescopes_every_chunk_at_once(settings) -> None:
    async def check(client, runtime):
        owner = await principal(client, "ministere", "S")
        reader = await principal(client, "ministere", "DR")
        lib = await create_library(client, owner, name="relabel", ceiling="S")
        r = await upload(client, owner, lib["id"], "cr.md", REPORT, "DR")
        doc = r.json()
        await wait_indexed(client, owner, lib["id"], [doc["id"]])
        query = {"query": "boîte de vitesses", "mode": "bm25"}
        assert (await client.post("/v1/search", json=query, headers=reader)).json()["data"]
        r = await client.patch(
            f"/v1/libraries/{lib['id']}/documents/{doc['id']}", json={"label": "S"}, headers=owner
        )
        assert r.status_code == 200 and r.json()["label"] == "S"
        assert (await client.post("/v1/search", json=query, headers=reader)).json()["data"] == []
        hits = (await client.post("/v1/search", json=query, headers=owner)).json()
        assert hits["data"] and hits["label"] == "S"
        r = await client.get(f"/v1/libraries/{lib['id']}/documents/{doc['id']}", headers=reader)
        assert r.status_code == 403 and "level" in r.json()["error"]["message"]
        listed = await client.get(f"/v1/libraries/{lib['id']}/documents", headers=reader)
        assert listed.json()["data"] == []
        assert "document-relabelled" in _all_text(runtime)

    run(settings, check)


def test_bad_input_gets_the_error_envelope(settings) -> None:
    async def check(client, runtime):
        owner = await principal(client, "ministere", "S")
        lib = await create_library(client, owner, name="x")
        base = f"/v1/libraries/{lib['id']}/documents"
        cases = [
            (await client.post("/v1/libraries", json={}, headers=owner), 400),
            (await client.post("/v1/libraries", content=b"{", headers=owner), 400),
            (await client.get("/v1/libraries/nope", headers=owner), 404),
            (await client.post(base, json={"x": 1}, headers=owner), 400),
            (await upload(client, owner, lib["id"], "a.txt", "x", "NOT-A-LEVEL"), 400),
            (await upload(client, owner, lib["id"], "img.png", b"\x89PNG\r\n\x1a\n\0\0"), 415),
            (await upload(client, owner, lib["id"], "vide.txt", b""), 422),
            (await client.get(base, params={"page_size": "0"}, headers=owner), 400),
            (await client.get(base, params={"sort_by": "x"}, headers=owner), 400),
            (await client.post("/v1/search", json={"query": ""}, headers=owner), 400),
            (await client.post("/v1/search", json={"query": "x", "mode": "y"}, headers=owner), 400),
            (await client.get(f"{base}/missing", headers=owner), 404),
        ]
        for response, status in cases:
            assert response.status_code == status, (response.request.url, response.text)
            error = response.json()["error"]
            assert error["message"] and error["type"]
        # Nothing was stored by any of them.
        assert runtime.db.query("SELECT COUNT(*) FROM documents")[0][0] == 0

    run(settings, check)


def test_search_filters_by_document_and_metadata(settings) -> None:
    async def check(client, runtime):
        owner = await principal(client, "ministere", "S")
        lib = await create_library(client, owner, name="filtres", ceiling="DR")
        ids = []
        for name, text in (("a.md", REPORT), ("b.txt", "VBL n° 4521 : fuite d'huile au carter.")):
            r = await upload(client, owner, lib["id"], name, text, "DR")
            ids.append(r.json()["id"])
        await wait_indexed(client, owner, lib["id"], ids)
        r = await client.patch(
            f"/v1/libraries/{lib['id']}/documents/{ids[1]}",
            json={"attributes": {"unit": "12e escadron"}},
            headers=owner,
        )
        assert r.json()["attributes"] == {"unit": "12e escadron"}

        async def names(filters: dict) -> set[str]:
            body = {"query": "fuite d'huile carter", "mode": "bm25", "filters": filters}
            r = await client.post("/v1/search", json=body, headers=owner)
            assert r.status_code == 200, r.text
            return {hit["document_name"] for hit in r.json()["data"]}

        assert await names({}) == {"a.md", "b.txt"}
        assert await names({"document_ids": [ids[0]]}) == {"a.md"}
        assert await names({"mime_types": ["text/plain"]}) == {"b.txt"}
        assert await names({"attributes": {"unit": "12e escadron"}}) == {"b.txt"}
        assert await names({"attributes": {"unit": "autre"}}) == set()

    run(settings, check)
