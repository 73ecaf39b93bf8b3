"""``/v1/files`` in the shape Mistral's and OpenAI's SDKs expect, with Égide's label.
Thin handlers: parse, call one :class:`~egide.tuning.files.FileService` method, serialise."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from egide.api.body import read_upload
from egide.api.routes import LABEL_HEADER, endpoint, request_id
from egide.gateway import Runtime
from egide.store.files import FileRecord
from egide.tenancy import Caller
from egide.tuning.files import FileService, FileUpload


def _files(request: Request) -> tuple[FileService, Caller, Runtime]:
    runtime: Runtime = request.app.state.runtime
    caller = runtime.auth.authenticate(request.headers.get("authorization"), request_id(request))
    return runtime.files, caller, runtime


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), 200, media_type="application/json")


def file_json(record: FileRecord, deleted: bool | None = None) -> dict[str, Any]:
    body = {
        "id": record.id,
        "object": "file",
        "bytes": record.size_bytes,
        "created_at": record.created_at,
        "filename": record.filename,
        "purpose": record.purpose,
        "sample_type": "instruct",
        "source": "upload",
        "num_lines": record.num_lines,
        "mimetype": "application/jsonl",
        "status": "processed",
        "label": record.label,
        "owner_org": record.owner_org,
        "sha256": record.sha256,
    }
    if deleted is not None:
        body["deleted"] = deleted
    return body


@endpoint
async def upload_file(request: Request) -> Response:
    files, caller, runtime = _files(request)
    upload = await read_upload(request, runtime.settings.tuning_max_file_bytes)
    marking = upload.fields.get("label") or request.headers.get(LABEL_HEADER)
    purpose = upload.fields.get("purpose") or "fine-tune"
    record = await run_in_threadpool(
        files.upload, caller, FileUpload(upload.filename, upload.data, purpose, marking)
    )
    return _json(file_json(record))


@endpoint
async def list_files(request: Request) -> Response:
    files, caller, _ = _files(request)
    purpose = request.query_params.get("purpose") or None
    records = await run_in_threadpool(files.listing, caller, purpose)
    data = [file_json(r) for r in records]
    return _json({"object": "list", "data": data, "total": len(data)})


@endpoint
async def get_file(request: Request) -> Response:
    files, caller, _ = _files(request)
    record = await run_in_threadpool(files.open, caller, request.path_params["file_id"])
    return _json(file_json(record, deleted=False))


@endpoint
async def download_file(request: Request) -> Response:
    files, caller, _ = _files(request)
    record, data = await run_in_threadpool(files.content, caller, request.path_params["file_id"])
    headers = {
        LABEL_HEADER: record.label,
        "Content-Disposition": f'attachment; filename="{record.filename}"',
    }
    return Response(data, 200, headers, media_type="application/octet-stream")


@endpoint
async def delete_file(request: Request) -> Response:
    files, caller, _ = _files(request)
    record = await run_in_threadpool(files.delete, caller, request.path_params["file_id"])
    return _json({"id": record.id, "object": "file", "deleted": True})


ROUTES = [
    Route("/v1/files", upload_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", get_file, methods=["GET"]),
    Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/v1/files/{file_id}/content", download_file, methods=["GET"]),
]
