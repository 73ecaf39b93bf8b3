"""The official mistralai SDK's ``beta.libraries`` against a real ``egide serve``, then a
grounded answer from the real default model with citations."""

from __future__ import annotations

import time

import httpx
import pytest
from mistralai.client import Mistral

pytestmark = [
    pytest.mark.model,
    # The SDK's own request models read fields it marks deprecated (e.g. ``page``).
    pytest.mark.filterwarnings(r"ignore:warning. \*\* DEPRECATED \*\*:DeprecationWarning"),
]

NOTE = """# Note de service — parc de véhicules

## Pneumatiques

Les pneumatiques des camions GBC 180 du 12e escadron sont remplacés tous les 40 000 km.

## Vidange

La vidange des groupes électrogènes se fait toutes les 250 heures de fonctionnement.
"""

MEMO = """Vehicle fleet memo

The water tanker CCP-12 carries 12,000 litres and is refilled at supply point Juniper.
"""


@pytest.fixture(scope="module")
def sdk(default_server):
    with Mistral(api_key=default_server.key, server_url=default_server.url) as client:
        yield client


def _wait_done(sdk: Mistral, library_id: str, document_id: str) -> str:
    deadline = time.monotonic() + 180
    while True:
        status = sdk.beta.libraries.documents.status(library_id=library_id, document_id=document_id)
        if status.process_status != "in_progress" or time.monotonic() > deadline:
            return status.process_status
        time.sleep(0.2)


def test_sdk_creates_uploads_lists_deletes_and_the_model_answers_with_citations(
    sdk, default_server
) -> None:
    library = sdk.beta.libraries.create(name="parc", description="notes de service")
    assert library.name == "parc" and library.nb_documents == 0
    assert library.id in {lib.id for lib in sdk.beta.libraries.list().data}

    uploaded = []
    for name, text in (("note-parc.md", NOTE), ("memo.txt", MEMO)):
        doc = sdk.beta.libraries.documents.upload(
            library_id=library.id, file={"file_name": name, "content": text.encode()}
        )
        assert doc.name == name and doc.library_id == library.id
        uploaded.append(doc)
    for doc in uploaded:
        assert _wait_done(sdk, library.id, doc.id) == "done"

    listed = sdk.beta.libraries.documents.list(library_id=library.id)
    assert {d.name for d in listed.data} == {"note-parc.md", "memo.txt"}
    assert listed.pagination.total_items == 2
    got = sdk.beta.libraries.documents.get(library_id=library.id, document_id=uploaded[0].id)
    assert got.process_status == "done" and got.hash == uploaded[0].hash
    text = sdk.beta.libraries.documents.text_content(
        library_id=library.id, document_id=uploaded[0].id
    )
    assert "250 heures" in text.text

    # A grounded answer: retrieval on the server, the real model, citations back.
    r = httpx.post(
        f"{default_server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {default_server.key}"},
        json={
            "model": "qwen2.5-coder-0.5b-instruct",
            "temperature": 0,
            "max_tokens": 48,
            "messages": [
                {
                    "role": "user",
                    "content": "Tous les combien d'heures vidange-t-on les groupes électrogènes ?",
                }
            ],
            "tools": [{"type": "document_library", "library_ids": [library.id]}],
        },
        timeout=120,
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert "250" in answer["choices"][0]["message"]["content"]
    assert any(c["document_name"] == "note-parc.md" for c in answer["citations"])

    sdk.beta.libraries.documents.delete(library_id=library.id, document_id=uploaded[1].id)
    listed = sdk.beta.libraries.documents.list(library_id=library.id)
    assert [d.name for d in listed.data] == ["note-parc.md"]
    deleted = sdk.beta.libraries.delete(library_id=library.id)
    assert deleted.id == library.id
    assert library.id not in {lib.id for lib in sdk.beta.libraries.list().data}
