"""What the benchmarks share: an in-process Égide with a client carrying the admin key,
and the packaged chat model's GGUF as the registry prepares it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from egide.api import create_app
from egide.config import Settings, default_models, load_settings
from egide.registry import ArtefactRegistry
from egide.store import open_database
from egide.store.artefacts import ArtefactRepository


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Égide built from ``settings`` and started (lifespan), requests through the ASGI app
    with the admin key; ``client.app`` is the app."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key = (settings.home / "admin.key").read_text().strip()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://egide.bench",
            headers={"Authorization": f"Bearer {key}"},
            timeout=900,
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def packaged_chat_model(home: Path) -> Path:
    """The default chat model's GGUF, assembled and verified into ``home`` by the registry."""
    settings = load_settings(None, env={"EGIDE_HOME": str(home)})
    db = open_database(home)
    try:
        path = ArtefactRegistry(settings, ArtefactRepository(db)).prepare(default_models()[0])
    finally:
        db.close()
    assert path is not None
    return path
