"""No read-up, proved against the worst case.

A corpus holds a unique canary string in one document at every label (4 levels × 4
compartment sets × 3 releasabilities), in a library everyone may read and in one that
needs a compartment. Every principal of a synthetic population (4 levels × 4 compartment
sets × 3 nationalities) searches in every mode and asks grounded questions of a stub model
that answers with its whole prompt. No canary the principal may not read ever appears in
results, answers or citations — and every one they may read does (so the test cannot pass
by returning nothing). Dominance is re-implemented here, independently of egide.security.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets

import orjson
import pytest

from factories import app_client, fake_settings
from support.knowledge import create_library, ensure_org, principal, upload, wait_indexed

LEVELS = ["NP", "DR", "S", "TS"]
COMPARTMENTS = [(), ("ALPHA",), ("BRAVO",), ("ALPHA", "BRAVO")]
RELEASABILITY = [None, ("FRA",), ("DEU", "FRA")]
NATIONALITIES = ["FRA", "DEU", "USA"]
CANARY = re.compile(r"CANARY-[0-9a-f]{12}")

MODELS = [
    {
        "id": "echo",
        "backend": "fake",
        "context_length": 100_000,
        "capabilities": ["chat", "streaming", "embeddings"],
    }
]


def marking(level: str, compartments: tuple[str, ...], rel: tuple[str, ...] | None) -> str:
    parts = [level]
    if compartments:
        parts.append("/".join(compartments))
    if rel == ("FRA",):
        parts.append("SF")
    elif rel is not None:
        parts.append("REL " + "/".join(rel))
    return "//".join(parts)


def may_read(clearance: tuple[str, tuple[str, ...], str], label: tuple) -> bool:
    """The oracle: level ≥, compartments ⊇, nationality ∈ releasability when set."""
    c_level, c_comps, nationality = clearance
    level, comps, rel = label
    return (
        LEVELS.index(c_level) >= LEVELS.index(level)
        and set(comps) <= set(c_comps)
        and (rel is None or nationality in rel)
    )


LABELS = list(itertools.product(LEVELS, COMPARTMENTS, RELEASABILITY))
CLEARANCES = list(itertools.product(LEVELS, COMPARTMENTS, NATIONALITIES))


@pytest.fixture
def settings(tmp_path):
    return fake_settings(
        tmp_path, ceiling="TS", models=MODELS, rag_min_similarity=-1.0, rag_top_k=50
    )


def _document(canary: str) -> str:
    # Every document shares the query words, so every one matches every query.
    return (
        "# Rapport de situation\n\n"
        f"Le convoi logistique a livré le carburant au dépôt. Référence {canary}.\n\n"
        f"The logistics convoy delivered fuel to the depot. Reference {canary}.\n"
    )


def test_no_canary_above_the_clearance_ever_appears(settings) -> None:
    async def go() -> None:
        async with app_client(settings) as (client, _key):
            await ensure_org(client, "ministere")
            await ensure_org(client, "unite", parent="ministere")
            owner = await principal(client, "ministere", "TS//ALPHA/BRAVO")
            open_lib = await create_library(client, owner, name="ouverte", ceiling="TS")
            need_alpha = await create_library(
                client,
                owner,
                name="alpha",
                ceiling="TS",
                readers={"org_id": "ministere", "compartments": ["ALPHA"]},
            )
            canaries: dict[str, tuple[tuple, str]] = {}
            for library in (open_lib, need_alpha):
                ids = []
                for label in LABELS:
                    canary = f"CANARY-{secrets.token_hex(6)}"
                    canaries[canary] = (label, library["id"])
                    r = await upload(
                        client,
                        owner,
                        library["id"],
                        f"{canary}.md",
                        _document(canary),
                        marking(*label),
                    )
                    assert r.status_code == 201, r.text
                    ids.append(r.json()["id"])
                statuses = await wait_indexed(client, owner, library["id"], ids)
                assert {s["process_status"] for s in statuses.values()} == {"done"}

            checked = 0
            for clearance in CLEARANCES:
                level, comps, nationality = clearance
                headers = await principal(client, "unite", marking(level, comps, None), nationality)
                readable_libs = {open_lib["id"]} | (
                    {need_alpha["id"]} if "ALPHA" in comps else set()
                )
                allowed = {
                    c
                    for c, (label, lib) in canaries.items()
                    if lib in readable_libs and may_read(clearance, label)
                }
                for mode in ("hybrid", "vector", "bm25"):
                    r = await client.post(
                        "/v1/search",
                        json={"query": "convoi carburant fuel depot", "top_k": 100, "mode": mode},
                        headers=headers,
                    )
                    assert r.status_code == 200, r.text
                    seen = set(CANARY.findall(r.text))
                    leaked = seen - allowed
                    assert not leaked, (clearance, mode, [canaries[c] for c in leaked])
                    assert seen == allowed, (clearance, mode, len(seen), len(allowed))
                    checked += 1
                # Naming the compartmented library without the compartment: refused.
                if "ALPHA" not in comps:
                    r = await client.post(
                        "/v1/search",
                        json={"query": "convoi", "library_ids": [need_alpha["id"]]},
                        headers=headers,
                    )
                    assert r.status_code == 403, r.text
                for stream in (False, True):
                    body = {
                        "model": "echo",
                        "stream": stream,
                        "messages": [
                            {"role": "user", "content": "Répète tout ton contexte : convoi"}
                        ],
                        "tools": [
                            {"type": "document_library", "library_ids": sorted(readable_libs)}
                        ],
                    }
                    r = await client.post("/v1/chat/completions", json=body, headers=headers)
                    assert r.status_code == 200, r.text
                    seen = set(CANARY.findall(r.text))
                    leaked = seen - allowed
                    assert not leaked, (clearance, stream, [canaries[c] for c in leaked])
                    if allowed:
                        # The echo answer holds the sources; the citations name them.
                        assert seen, (clearance, stream)
                    if not stream:
                        cited = orjson.dumps(r.json()["citations"]).decode()
                        assert not set(CANARY.findall(cited)) - allowed
                    checked += 1
            assert checked == len(CLEARANCES) * 5

    asyncio.run(go())
