"""Two gateway processes share one store: what one ingests, deletes or relabels, the
other's index reflects before its next search (each applies the store's change log)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from factories import app_client, fake_settings
from support.knowledge import create_library, ensure_org, principal, upload, wait_indexed

MODELS = [{"id": "echo", "backend": "fake", "capabilities": ["chat", "embeddings"]}]


@pytest.fixture
def settings(tmp_path):
    return fake_settings(tmp_path, ceiling="S", models=MODELS)


def test_changes_in_one_process_reach_the_other_at_once(settings) -> None:
    async def go() -> None:
        async with AsyncExitStack() as stack:
            a, _ = await stack.enter_async_context(app_client(settings))
            b, _ = await stack.enter_async_context(app_client(settings))
            await ensure_org(a, "ministere")
            owner = await principal(a, "ministere", "S")
            reader = await principal(a, "ministere", "DR")
            lib = await create_library(a, owner, name="partagee", ceiling="S")
            doc = (
                await upload(a, owner, lib["id"], "cr.txt", "Relève de la garde à Brévane.", "DR")
            ).json()
            await wait_indexed(a, owner, lib["id"], [doc["id"]])
            query = {"query": "relève garde", "mode": "bm25"}
            assert (await b.post("/v1/search", json=query, headers=reader)).json()["data"]

            r = await b.patch(
                f"/v1/libraries/{lib['id']}/documents/{doc['id']}",
                json={"label": "S"},
                headers=owner,
            )
            assert r.status_code == 200, r.text
            assert (await a.post("/v1/search", json=query, headers=reader)).json()["data"] == []
            assert (await a.post("/v1/search", json=query, headers=owner)).json()["data"]

            r = await b.delete(f"/v1/libraries/{lib['id']}/documents/{doc['id']}", headers=owner)
            assert r.status_code == 204
            assert (await a.post("/v1/search", json=query, headers=owner)).json()["data"] == []
            index_a = a._transport.app.state.runtime.gateway.knowledge.retriever.index
            assert len(index_a) == 0

    asyncio.run(go())
