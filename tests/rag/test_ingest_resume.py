"""An ingestion interrupted by a stop resumes at the next start, from where it was; a
failing embedder fails the document alone, with its reason."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from egide.backends.fake import EchoBackend
from egide.errors import EngineError
from factories import app_client, fake_settings
from support.knowledge import create_library, ensure_org, principal, upload, wait_indexed

MODELS = [{"id": "echo", "backend": "fake", "capabilities": ["chat", "embeddings"]}]
LONG = "\n\n".join(
    f"## Section {i}\n\nLe véhicule {i} a parcouru {i * 1000} kilomètres depuis sa dernière "
    "révision ; le prochain contrôle est prévu au dépôt central." * 3
    for i in range(40)
)


@pytest.fixture
def settings(tmp_path):
    return fake_settings(
        tmp_path, ceiling="DR", models=MODELS, rag_chunk_tokens=64, rag_min_similarity=-1.0
    )


def test_a_stopped_ingestion_resumes_at_the_next_start(settings, monkeypatch) -> None:
    original = EchoBackend.embed
    batches = []

    async def slow_embed(self, texts, *, input_type="query"):
        batches.append(len(texts))
        await asyncio.sleep(0.05)
        return await original(self, texts, input_type=input_type)

    monkeypatch.setattr(EchoBackend, "embed", slow_embed)

    async def first_run() -> tuple[str, str]:
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            owner = await principal(client, "ministere", "DR")
            lib = await create_library(client, owner, name="parc")
            r = await upload(client, owner, lib["id"], "parc.md", LONG, "DR")
            assert r.status_code == 201, r.text
            total = r.json()["progress"]["chunks_total"]
            assert total > 16
            while len(batches) < 2:
                await asyncio.sleep(0.01)
            return lib["id"], r.json()["id"]

    library_id, doc_id = asyncio.run(first_run())

    async def second_run() -> None:
        async with app_client(settings) as (client, _key):
            runtime = client._transport.app.state.runtime
            partial = runtime.db.query(
                "SELECT COUNT(*) FROM chunks WHERE document_id = ? AND vector IS NOT NULL",
                (doc_id,),
            )[0][0]
            owner = await principal(client, "ministere", "DR")
            statuses = await wait_indexed(client, owner, library_id, [doc_id], timeout=60)
            assert statuses[doc_id]["process_status"] == "done"
            progress = statuses[doc_id]["progress"]
            assert progress["chunks_done"] == progress["chunks_total"] > partial > 0
            r = await client.post(
                "/v1/search", json={"query": "véhicule 39", "mode": "bm25"}, headers=owner
            )
            assert any("véhicule 39" in hit["text"] for hit in r.json()["data"])

    asyncio.run(second_run())


def test_an_embedding_failure_fails_that_document_alone(settings, monkeypatch) -> None:
    original = EchoBackend.embed

    async def picky_embed(self, texts, *, input_type="query"):
        if any("poison" in t for t in texts):
            raise EngineError("the embedding engine crashed on this input")
        return await original(self, texts, input_type=input_type)

    monkeypatch.setattr(EchoBackend, "embed", picky_embed)

    async def go() -> None:
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            owner = await principal(client, "ministere", "DR")
            lib = await create_library(client, owner, name="x")
            bad = (await upload(client, owner, lib["id"], "bad.txt", "poison ivy report")).json()
            good = (await upload(client, owner, lib["id"], "good.txt", "rapport carburant")).json()
            statuses = await wait_indexed(client, owner, lib["id"], [bad["id"], good["id"]])
            assert statuses[bad["id"]]["process_status"] == "error"
            assert "embedding failed" in statuses[bad["id"]]["error"]
            assert statuses[good["id"]]["process_status"] == "done"
            runtime = client._transport.app.state.runtime
            rows = runtime.db.query(
                "SELECT COUNT(*) FROM chunks WHERE document_id = ?", (bad["id"],)
            )
            assert rows[0][0] == 0

    asyncio.run(go())


def test_the_index_is_saved_at_stop_and_caught_up_at_start(settings) -> None:
    async def first() -> tuple[str, dict, list[str]]:
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            owner = await principal(client, "ministere", "DR")
            lib = await create_library(client, owner, name="parc")
            ids = []
            for name, text in (
                ("a.txt", "Relève de la garde à Brévane."),
                ("b.txt", "Convoi vers Tazenne."),
            ):
                ids.append((await upload(client, owner, lib["id"], name, text, "DR")).json()["id"])
            await wait_indexed(client, owner, lib["id"], ids)
            return lib["id"], owner, ids

    library_id, owner, ids = asyncio.run(first())
    assert (settings.home / "search-index" / "egide-retriever.json").exists()

    async def second() -> None:
        async with app_client(settings) as (client, _key):
            retriever = client._transport.app.state.runtime.gateway.knowledge.retriever
            assert len(retriever.index) == 2  # loaded from the snapshot
            calls = []
            original = retriever.docs.searchable_chunks
            retriever.docs.searchable_chunks = lambda *a, **k: calls.append(a) or original(*a, **k)
            r = await client.delete(f"/v1/libraries/{library_id}/documents/{ids[0]}", headers=owner)
            assert r.status_code == 204
            r = await client.post(
                "/v1/search", json={"query": "convoi garde", "mode": "bm25"}, headers=owner
            )
            assert [hit["document_name"] for hit in r.json()["data"]] == ["b.txt"]
            assert calls == []  # no full reload: only the change was applied

    asyncio.run(second())


def test_a_snapshot_that_does_not_match_the_store_is_ignored(settings) -> None:
    async def first() -> None:
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            owner = await principal(client, "ministere", "DR")
            lib = await create_library(client, owner, name="parc")
            doc = (
                await upload(client, owner, lib["id"], "a.txt", "Relève à Brévane.", "DR")
            ).json()
            await wait_indexed(client, owner, lib["id"], [doc["id"]])

    asyncio.run(first())
    meta = settings.home / "search-index" / "egide-retriever.json"
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, "mark": "another-store"}))
    # The store no longer holds the document (as another store would not).
    with sqlite3.connect(settings.home / "egide.db") as conn:
        conn.execute("DELETE FROM chunks")
        conn.execute("DELETE FROM documents")

    async def second() -> None:
        async with app_client(settings) as (client, _key):
            retriever = client._transport.app.state.runtime.gateway.knowledge.retriever
            # Rebuilt from the store: the snapshot's chunk is not searchable.
            assert retriever.index is None or len(retriever.index) == 0

    asyncio.run(second())
