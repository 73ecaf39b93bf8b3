"""Reading request bodies: size limit first, then JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.exceptions import HTTPException
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


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes
    content_type: str | None
    fields: dict[str, str]


async def read_upload(request: Request, limit: int) -> UploadedFile:
    """A ``multipart/form-data`` body with one ``file`` part (and text fields), refused
    before it is read when its declared size is over ``limit``."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest(
            "send the document as multipart/form-data with a 'file' part "
            "(curl -F file=@report.pdf)",
            param="file",
        )
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise InvalidRequest(
            "an upload needs a Content-Length header (chunked uploads are not accepted)"
        )
    if int(declared) > limit + 65536:
        raise PayloadTooLarge(
            f"the upload is {declared} bytes, over the limit of {limit} bytes per document; "
            "split the document (or raise rag_max_document_bytes in egide.toml)"
        )
    try:
        form = await request.form(max_files=1, max_fields=16)
    except HTTPException as exc:
        raise InvalidRequest(f"the multipart body cannot be read: {exc.detail}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidRequest("the multipart body has no 'file' part", param="file")
    data = await upload.read()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    await form.close()
    return UploadedFile(upload.filename or "", data, upload.content_type, fields)
