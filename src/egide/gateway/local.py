"""In-process use of the gateway (no server): load only the model asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from egide.config import Settings
from egide.gateway.boot import build_runtime
from egide.protocol import mistral
from egide.protocol.invalid import invalid_request
from egide.protocol.requests import ChatRequest
from egide.tenancy import local_caller


async def local_chat(settings: Settings, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    wanted = payload.get("model")
    only = tuple(m for m in settings.all_models() if m.id == wanted)
    scoped = (
        settings.model_copy(update={"models": only, "default_models": False}) if only else settings
    )
    try:
        request = ChatRequest.model_validate(mistral.normalise(dict(payload)))
    except ValidationError as exc:
        raise invalid_request(exc) from exc
    runtime = build_runtime(scoped)
    await runtime.start()
    try:
        answer = await runtime.gateway.chat(local_caller(runtime.ceiling), request)
        result = answer.body
        if isinstance(result, dict):
            yield result
            return
        async for chunk in result:
            yield chunk
    finally:
        await runtime.close()
