"""Factory helpers for in-process tests: settings, a fake-backed app, an ASGI client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from egide.api import create_app
from egide.config import Settings, load_settings


def fake_settings(home: Path, **overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "default_models": False,
        "models": [
            {
                "id": "echo",
                "backend": "fake",
                "context_length": 200,
                "capabilities": [
                    "chat",
                    "completions",
                    "embeddings",
                    "streaming",
                    "tools",
                    "json_schema",
                ],
            },
            {"id": "echo-plain", "backend": "fake", "capabilities": ["chat"]},
        ],
    }
    data.update(overrides)
    path = home / "egide.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(data))
    return load_settings(path, env={"EGIDE_HOME": str(home)})


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An in-process client (lifespan run) and the admin key."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state  # noqa: B018
        key = (settings.home / "admin.key").read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://egide.test",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            yield client, key


def run_with_client(settings: Settings, test: Callable[[httpx.AsyncClient], Any]) -> None:
    import asyncio

    async def go() -> None:
        async with app_client(settings) as (client, _key):
            await test(client)

    asyncio.run(go())


def job_record(**overrides: Any) -> Any:
    """A fine-tuning job row as the store holds it; ``overrides`` set any field."""
    from egide.store.jobs import JobRecord

    values: dict[str, Any] = {
        "id": "ftjob-1",
        "model": "base",
        "suffix": "unit",
        "status": "QUEUED",
        "auto_start": True,
        "owner_org": None,
        "created_by": "u1",
        "label": "NP",
        "training_files": ["file-a"],
        "validation_files": [],
        "hyperparameters": {"training_steps": 10, "learning_rate": 1e-4},
        "created_at": 1,
        "modified_at": 1,
    }
    return JobRecord(**{**values, **overrides})
