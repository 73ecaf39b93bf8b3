"""Route handlers: parse, call one gateway method, serialise. Nothing else."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from egide.api.body import read_json
from egide.api.errors import error_response, in_band
from egide.errors import EgideError
from egide.gateway import Runtime
from egide.gateway.service import Answer
from egide.protocol import mistral, sse
from egide.protocol.requests import ChatRequest, CompletionRequest, EmbeddingRequest
from egide.tenancy import Caller

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("egide.api")
LABEL_HEADER = "X-Egide-Label"
REQUEST_ID_HEADER = "X-Request-Id"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def endpoint(handler: Handler) -> Handler:
    """Turn every exception into the error envelope."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            response = await handler(request)
        except Exception as exc:
            if not isinstance(exc, EgideError | ValidationError):
                log.exception("unexpected error in %s %s", request.method, request.url.path)
            response = error_response(exc)
        response.headers[REQUEST_ID_HEADER] = request_id(request)
        return response

    return wrapped


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _caller(request: Request, runtime: Runtime) -> Caller:
    return runtime.auth.authenticate(request.headers.get("authorization"), request_id(request))


def request_id(request: Request) -> str:
    """The caller's ``X-Request-Id`` (if short and printable) or a new one; the same for
    every audit event of the request, and echoed in the response."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        request.state.request_id = rid
    return str(rid)


async def _body(request: Request, runtime: Runtime) -> dict[str, Any]:
    return await read_json(request, runtime.settings.max_body_bytes)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def _result(answer: Answer) -> Response:
    headers = {LABEL_HEADER: answer.label}
    if isinstance(answer.body, dict):
        response = _json(answer.body)
        response.headers.update(headers)
        return response
    return StreamingResponse(
        sse.frame(answer.body, in_band),
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, **headers},
    )


@endpoint
async def chat_completions(request: Request) -> Response:
    runtime = _runtime(request)
    caller = _caller(request, runtime)
    chat = ChatRequest.model_validate(mistral.normalise(await _body(request, runtime)))
    return _result(await runtime.gateway.chat(caller, chat, request.headers.get(LABEL_HEADER)))


@endpoint
async def completions(request: Request) -> Response:
    runtime = _runtime(request)
    caller = _caller(request, runtime)
    completion = CompletionRequest.model_validate(mistral.normalise(await _body(request, runtime)))
    return _result(
        await runtime.gateway.complete(caller, completion, request.headers.get(LABEL_HEADER))
    )


@endpoint
async def embeddings(request: Request) -> Response:
    runtime = _runtime(request)
    caller = _caller(request, runtime)
    body = mistral.normalise_embeddings(await _body(request, runtime))
    return _json(await runtime.gateway.embed(caller, EmbeddingRequest.model_validate(body)))


@endpoint
async def list_models(request: Request) -> Response:
    runtime = _runtime(request)
    return _json(runtime.gateway.list_models(_caller(request, runtime)))


@endpoint
async def get_model(request: Request) -> Response:
    runtime = _runtime(request)
    caller = _caller(request, runtime)
    return _json(runtime.gateway.get_model(caller, request.path_params["model_id"]))


@endpoint
async def download_adapter(request: Request) -> Response:
    runtime = _runtime(request)
    caller = _caller(request, runtime)
    path = runtime.gateway.adapter_file(caller, request.path_params["model_id"])
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"{path.stem}.lora.gguf"
    )


@endpoint
async def health(request: Request) -> Response:
    report = _runtime(request).gateway.health()
    return _json(report, 200 if report["status"] == "ok" else 503)


@endpoint
async def metrics(request: Request) -> Response:
    body = _runtime(request).gateway.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
