"""``/v1/libraries`` in Mistral's shape (so the ``mistralai`` SDK's ``beta.libraries`` works
unchanged), plus Égide's fields, and ``/v1/search``. Thin handlers: parse, call one
:class:`~egide.rag.service.Knowledge` method, serialise."""

from __future__ import annotations

import math
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from egide.api.body import read_json, read_upload
from egide.api.knowledge_bodies import DocumentPatch, LibraryBody, SearchBody
from egide.api.routes import LABEL_HEADER, endpoint, request_id
from egide.errors import InvalidRequest
from egide.gateway import Runtime
from egide.rag.documents import Upload
from egide.rag.libraries import LibraryView
from egide.rag.service import Knowledge, Results
from egide.security.markings import render_compact
from egide.store.documents import DocumentRecord
from egide.tenancy import Caller

_SORTS = ("created_at", "name", "size")


def _knowledge(request: Request) -> tuple[Knowledge, Caller, Runtime]:
    runtime: Runtime = request.app.state.runtime
    caller = runtime.auth.authenticate(request.headers.get("authorization"), request_id(request))
    return runtime.gateway.knowledge, caller, runtime


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


async def _body(request: Request, runtime: Runtime) -> dict[str, Any]:
    return await read_json(request, runtime.settings.max_body_bytes)


def library_json(view: LibraryView) -> dict[str, Any]:
    r = view.library.record
    return {
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "owner_id": r.owner_org,
        "owner_type": "Organization",
        "total_size": view.stats.total_size,
        "nb_documents": view.stats.documents,
        "chunk_size": r.chunk_size,
        "owner_org": r.owner_org,
        "created_by": r.created_by,
        "ceiling": r.ceiling,
        "readers": {"org_id": r.read_org, "compartments": sorted(r.read_compartments)},
        "writers": {"org_id": r.write_org, "compartments": sorted(r.write_compartments)},
    }


def document_json(doc: DocumentRecord) -> dict[str, Any]:
    status = {"in_progress": "in_progress", "done": "done", "error": "error"}[doc.status]
    return {
        "id": doc.id,
        "library_id": doc.library_id,
        "hash": doc.sha256,
        "mime_type": doc.mime_type,
        "extension": doc.extension,
        "size": doc.size,
        "name": doc.name,
        "created_at": doc.created_at,
        "process_status": status,
        "processing_status": status.capitalize() if status != "in_progress" else "Running",
        "uploaded_by_id": doc.uploaded_by,
        "uploaded_by_type": "User",
        "tokens_processing_total": doc.tokens,
        "tokens_processing_main_content": doc.tokens,
        "last_processed_at": doc.processed_at,
        "number_of_pages": doc.pages,
        "summary": None,
        "attributes": doc.attributes,
        "label": doc.label,
        "progress": {"chunks_done": doc.chunks_done, "chunks_total": doc.chunks_total},
        "error": doc.error,
    }


# -- libraries ----------------------------------------------------------------------------


@endpoint
async def create_library(request: Request) -> Response:
    knowledge, caller, runtime = _knowledge(request)
    body = LibraryBody.model_validate(await _body(request, runtime))
    if body.name is None:
        raise InvalidRequest("a library needs a 'name'", param="name")
    view = await run_in_threadpool(knowledge.libraries.create, caller, body.spec())
    return _json(library_json(view), 201)


@endpoint
async def list_libraries(request: Request) -> Response:
    knowledge, caller, _ = _knowledge(request)
    views = await run_in_threadpool(knowledge.libraries.list, caller)
    return _json({"data": [library_json(v) for v in views]})


@endpoint
async def get_library(request: Request) -> Response:
    knowledge, caller, _ = _knowledge(request)
    view = await run_in_threadpool(
        knowledge.libraries.get, caller, request.path_params["library_id"]
    )
    return _json(library_json(view))


@endpoint
async def update_library(request: Request) -> Response:
    knowledge, caller, runtime = _knowledge(request)
    body = LibraryBody.model_validate(await _body(request, runtime))
    view = await run_in_threadpool(
        knowledge.libraries.update, caller, request.path_params["library_id"], body.spec()
    )
    return _json(library_json(view))


@endpoint
async def delete_library(request: Request) -> Response:
    knowledge, caller, _ = _knowledge(request)
    view = await run_in_threadpool(
        knowledge.delete_library, caller, request.path_params["library_id"]
    )
    return _json(library_json(view))  # the deleted library, as Mistral's API returns it


# -- documents ----------------------------------------------------------------------------


@endpoint
async def upload_document(request: Request) -> Response:
    knowledge, caller, runtime = _knowledge(request)
    library_id = request.path_params["library_id"]
    upload = await read_upload(request, runtime.settings.rag_max_document_bytes)
    marking = upload.fields.get("label") or request.headers.get(LABEL_HEADER)
    doc = await run_in_threadpool(
        knowledge.upload,
        caller,
        library_id,
        Upload(upload.filename, upload.data, upload.content_type, marking),
    )
    return _json(document_json(doc), 201)


@endpoint
async def list_documents(request: Request) -> Response:
    knowledge, caller, _ = _knowledge(request)
    q = request.query_params
    page_size = _int(q.get("page_size"), 100, "page_size", 1, 1000)
    page = _int(q.get("page"), 0, "page", 0, 1_000_000)
    sort_by = q.get("sort_by") or "created_at"
    if sort_by not in _SORTS:
        raise InvalidRequest(f"'sort_by' must be one of {', '.join(_SORTS)}", param="sort_by")
    descending = (q.get("sort_order") or "desc") == "desc"
    docs = await run_in_threadpool(
        knowledge.list_documents, caller, request.path_params["library_id"]
    )
    search = (q.get("search") or "").casefold()
    if search:
        docs = [d for d in docs if search in d.name.casefold()]
    docs.sort(key=lambda d: getattr(d, sort_by), reverse=descending)
    total = len(docs)
    pages = max(1, math.ceil(total / page_size))
    window = docs[page * page_size : (page + 1) * page_size]
    return _json(
        {
            "pagination": {
                "total_items": total,
                "total_pages": pages,
                "current_page": page,
                "page_size": page_size,
                "has_more": (page + 1) * page_size < total,
            },
            "data": [document_json(d) for d in window],
        }
    )


def _int(text: str | None, default: int, name: str, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an integer", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be between {low} and {high}", param=name)
    return value


@endpoint
async def get_document(request: Request) -> Response:
    knowledge, caller, _ = _knowledge(request)
    p = request.path_params
    doc = await run_in_threadpool(knowledge.get_document, caller, p["library_id"], p["document_id"])
    return _json(document_json(doc))


@endpoint
async def document_status(request: Request) -> Response:
    knowledge, caller, _ = _knowledge(request)
    p = request.path_params
    doc = document_json(
        await run_in_threadpool(knowledge.get_document, caller, p["library_id"], p["document_id"])
    )
    keys = ("process_status", "processing_status", "progress", "error")
    return _json({"document_id": doc["id"], **{k: doc[k] for k in keys}})


@endpoint
async def document_text(request: Request) -> Response:
    knowledge, caller, _ = _knowledge(request)
    p = request.path_params
    text = await run_in_threadpool(
        knowledge.document_text, caller, p["library_id"], p["document_id"]
    )
    return _json({"text": text})


@endpoint
async def update_document(request: Request) -> Response:
    knowledge, caller, runtime = _knowledge(request)
    p = request.path_params
    patch = DocumentPatch.model_validate(await _body(request, runtime))
    doc = await run_in_threadpool(
        knowledge.update_document,
        caller,
        p["library_id"],
        p["document_id"],
        patch.name,
        patch.attributes,
        patch.label,
    )
    return _json(document_json(doc))


@endpoint
async def delete_document(request: Request) -> Response:
    knowledge, caller, _ = _knowledge(request)
    p = request.path_params
    await run_in_threadpool(knowledge.delete_document, caller, p["library_id"], p["document_id"])
    return Response(status_code=204)


# -- search -------------------------------------------------------------------------------


def results_json(results: Results, query: str) -> dict[str, Any]:
    data = []
    for f in results.found:
        c, doc = f.chunk, results.documents.get(f.chunk.document_id)
        data.append(
            {
                "object": "search.result",
                "chunk_id": c.id,
                "document_id": c.document_id,
                "document_name": doc.name if doc else None,
                "library_id": c.library_id,
                "position": c.position,
                "page": c.page,
                "headings": list(c.headings),
                "text": c.text,
                "label": c.label,
                "score": f.hit.score,
                "vector_score": f.hit.vector_score,
                "bm25_score": f.hit.bm25_score,
            }
        )
    return {"object": "list", "query": query, "data": data}


@endpoint
async def search(request: Request) -> Response:
    knowledge, caller, runtime = _knowledge(request)
    body = SearchBody.model_validate(await _body(request, runtime))
    results = await knowledge.search(caller, body.search())
    label = render_compact(results.label)
    return _json({**results_json(results, body.query), "label": label}, 200, {LABEL_HEADER: label})


_LIB = "/v1/libraries/{library_id}"
_DOC = _LIB + "/documents/{document_id}"
ROUTES = [
    Route("/v1/libraries", create_library, methods=["POST"]),
    Route("/v1/libraries", list_libraries, methods=["GET"]),
    Route(_LIB, get_library, methods=["GET"]),
    Route(_LIB, update_library, methods=["PATCH", "PUT"]),
    Route(_LIB, delete_library, methods=["DELETE"]),
    Route(_LIB + "/documents", upload_document, methods=["POST"]),
    Route(_LIB + "/documents", list_documents, methods=["GET"]),
    Route(_DOC, get_document, methods=["GET"]),
    Route(_DOC, update_document, methods=["PATCH", "PUT"]),
    Route(_DOC, delete_document, methods=["DELETE"]),
    Route(_DOC + "/status", document_status, methods=["GET"]),
    Route(_DOC + "/text_content", document_text, methods=["GET"]),
    Route("/v1/search", search, methods=["POST"]),
]
