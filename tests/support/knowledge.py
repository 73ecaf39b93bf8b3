"""Building blocks for knowledge-base tests over the HTTP API: principals with a given
clearance, libraries, uploads, and waiting for indexing."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

_serial = itertools.count()


async def ensure_org(client: httpx.AsyncClient, org_id: str, parent: str | None = None) -> None:
    r = await client.post(
        "/v1/admin/orgs", json={"id": org_id, "name": org_id.title(), "parent": parent}
    )
    assert r.status_code in (200, 201) or "already exists" in r.text, r.text


async def principal(
    client: httpx.AsyncClient,
    org: str,
    clearance: str,
    nationality: str = "FRA",
    roles: tuple[str, ...] = ("user",),
) -> dict[str, str]:
    """Headers of a new user's key (the client carries the admin key)."""
    username = f"user-{next(_serial)}"
    r = await client.post(
        "/v1/admin/users",
        json={
            "username": username,
            "org": org,
            "nationality": nationality,
            "clearance": clearance,
            "roles": list(roles),
        },
    )
    assert r.status_code in (200, 201), r.text
    r = await client.post("/v1/admin/keys", json={"user_id": r.json()["id"]})
    assert r.status_code in (200, 201), r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


async def create_library(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    r = await client.post("/v1/libraries", json={"name": "library", **body}, headers=headers)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    library_id: str,
    filename: str,
    content: bytes | str,
    label: str | None = None,
) -> httpx.Response:
    data = content.encode() if isinstance(content, str) else content
    form = {"label": label} if label else None
    return await client.post(
        f"/v1/libraries/{library_id}/documents",
        files={"file": (filename, data)},
        data=form,
        headers=headers,
    )


async def wait_indexed(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    library_id: str,
    document_ids: list[str],
    timeout: float = 120.0,
) -> dict[str, dict[str, Any]]:
    """Poll every document's status until none is in progress; return the statuses."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    statuses: dict[str, dict[str, Any]] = {}
    pending = list(document_ids)
    while pending:
        for doc_id in list(pending):
            r = await client.get(
                f"/v1/libraries/{library_id}/documents/{doc_id}/status", headers=headers
            )
            assert r.status_code == 200, r.text
            if r.json()["process_status"] != "in_progress":
                statuses[doc_id] = r.json()
                pending.remove(doc_id)
        if pending:
            assert loop.time() < deadline, f"documents still indexing: {pending}"
            await asyncio.sleep(0.05)
    return statuses
