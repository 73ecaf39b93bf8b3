"""Server-sent events framing, as the OpenAI and Mistral SDKs read it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from egide.errors import EgideError

log = logging.getLogger("egide.stream")

log = logging.getLogger("egide.stream")

DONE = b"data: [DONE]\n\n"


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def frame(chunks: AsyncIterator[dict[str, Any]], on_error: Any) -> AsyncIterator[bytes]:
    """Frame ``chunks`` as SSE and end with ``[DONE]``. An error after the first byte
    cannot change the HTTP status any more: it is sent as an ``error`` event."""
    try:
        async for chunk in chunks:
            yield event(chunk)
    except Exception as exc:
        if not isinstance(exc, EgideError):
            log.exception("a stream failed")
        yield event(on_error(exc))
    yield DONE
