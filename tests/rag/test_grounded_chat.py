"""Grounded chat: Mistral's document_library tool, server-side retrieval, citations, the
answer's label, and "nothing found" without calling the model."""

from __future__ import annotations

import asyncio

import pytest

from factories import app_client, fake_settings
from support.knowledge import create_library, ensure_org, principal, upload, wait_indexed

MODELS = [
    {
        "id": "echo",
        "backend": "fake",
        "context_length": 20_000,
        "capabilities": ["chat", "streaming", "embeddings"],
    },
    {"id": "echo-dr", "backend": "fake", "label": "DR", "capabilities": ["chat"]},
]

SITREP = """DIFFUSION RESTREINTE

# Compte rendu de situation n° 12

Le poste de ravitaillement PR-7 a reçu 40 000 litres de gazole le 3 mai.

DIFFUSION RESTREINTE
"""


@pytest.fixture
def settings(tmp_path):
    return fake_settings(tmp_path, ceiling="S", models=MODELS, rag_min_similarity=-1.0)


def _chat(library_id: str, content: str, model: str = "echo", **extra) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "tools": [{"type": "document_library", "library_ids": [library_id]}],
        **extra,
    }


def test_grounded_answer_cites_and_carries_the_join_of_labels(settings) -> None:
    async def go():
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            owner = await principal(client, "ministere", "S")
            lib = await create_library(client, owner, name="sitreps", ceiling="S")
            r = await upload(client, owner, lib["id"], "cr-12.md", SITREP, "DR")
            assert r.status_code == 201, r.text
            await wait_indexed(client, owner, lib["id"], [r.json()["id"]])

            r = await client.post(
                "/v1/chat/completions", json=_chat(lib["id"], "gazole PR-7"), headers=owner
            )
            assert r.status_code == 200, r.text
            body = r.json()
            # The echo model shows what it was given: the sources, numbered.
            content = body["choices"][0]["message"]["content"]
            assert "[1] cr-12.md" in content and "40 000 litres" in content
            assert body["citations"][0]["document_name"] == "cr-12.md"
            assert body["citations"][0]["label"] == "DR"
            # NP request + NP model + DR chunk → DR answer.
            assert r.headers["x-egide-label"] == "DR" and body["label"] == "DR"

            r = await client.post(
                "/v1/chat/completions",
                json=_chat(lib["id"], "gazole", stream=True),
                headers=owner,
            )
            assert r.status_code == 200 and r.headers["x-egide-label"] == "DR"
            assert '"citations"' in r.text and "40" in r.text

            # A caller cleared NP reads nothing from it: "nothing found", no model call.
            low = await principal(client, "ministere", "NP")
            r = await client.post(
                "/v1/chat/completions", json=_chat(lib["id"], "gazole PR-7"), headers=low
            )
            assert r.status_code == 200, r.text
            content = r.json()["choices"][0]["message"]["content"]
            assert "No relevant passage" in content and "40 000" not in content
            assert r.headers["x-egide-label"] == "NP"
            assert r.json()["usage"]["prompt_tokens"] == 0

            # An unknown library, or one the caller may not read: clear errors.
            r = await client.post(
                "/v1/chat/completions", json=_chat("nope", "gazole"), headers=owner
            )
            assert r.status_code == 404 and "library" in r.json()["error"]["message"]
            r = await client.post(
                "/v1/chat/completions",
                json={**_chat(lib["id"], "x"), "tools": [{"type": "document_library"}]},
                headers=owner,
            )
            assert r.status_code == 400 and "library_ids" in r.json()["error"]["message"]

    asyncio.run(go())


def test_nothing_relevant_says_so(tmp_path) -> None:
    settings = fake_settings(tmp_path, ceiling="S", models=MODELS, rag_min_similarity=0.9999)

    async def go():
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            owner = await principal(client, "ministere", "S")
            lib = await create_library(client, owner, name="vide", ceiling="S")
            r = await upload(client, owner, lib["id"], "cr.md", SITREP, "DR")
            await wait_indexed(client, owner, lib["id"], [r.json()["id"]])
            r = await client.post(
                "/v1/chat/completions", json=_chat(lib["id"], "météo à Brest"), headers=owner
            )
            content = r.json()["choices"][0]["message"]["content"]
            assert content.startswith("Aucun passage pertinent") and "PR-7" not in content
            assert r.json()["citations"] == []

    asyncio.run(go())
