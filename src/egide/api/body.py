"""Reading request bodies: size limit first, then JSON."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from egide.errors import InvalidRequest, MalformedJSON, PayloadTooLarge


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    if declared is not None and declared.isdigit():
        raw = await request.body()
    else:
        raw = b""
        async for part in request.stream():
            raw += part
            if len(raw) > limit:
                raise _too_large(len(raw), limit)
    if len(raw) > limit:
        raise _too_large(len(raw), limit)
    if not raw:
        raise MalformedJSON("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(
            f"the request body is not valid JSON ({exc}); send a JSON object with "
            "'Content-Type: application/json'"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"the request body must be a JSON object, not {type(data).__name__}")
    return data


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is {size} bytes, over the limit of {limit} bytes; send less "
        "(or raise max_body_bytes in egide.toml)"
    )
