"""``create_app(settings)``: the ASGI application. No module-level app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from egide.api import admin_routes, file_routes, job_routes, knowledge_routes, routes
from egide.api.errors import envelope
from egide.config import Settings
from egide.gateway import Runtime, build_runtime


def create_app(
    settings: Settings,
    runtime: Runtime | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    """The API for ``settings``. Pass a prepared ``runtime`` (the CLI does, to show
    progress while preparing models); otherwise it is built at startup. ``on_ready`` runs
    once every backend has started."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = runtime or build_runtime(settings)
        await rt.start()
        app.state.runtime = rt
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await rt.close()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", routes.chat_completions, methods=["POST"]),
            Route("/v1/completions", routes.completions, methods=["POST"]),
            Route("/v1/embeddings", routes.embeddings, methods=["POST"]),
            Route("/v1/models", routes.list_models, methods=["GET"]),
            Route("/v1/models/{model_id}/adapter", routes.download_adapter, methods=["GET"]),
            Route("/v1/models/{model_id:path}", routes.get_model, methods=["GET"]),
            Route("/health", routes.health, methods=["GET"]),
            Route("/metrics", routes.metrics, methods=["GET"]),
            *admin_routes.ROUTES,
            *knowledge_routes.ROUTES,
            *file_routes.ROUTES,
            *job_routes.ROUTES,
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    import orjson

    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no endpoint {request.method} {request.url.path}; see the API reference"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    body = envelope(message, "invalid_request_error", None, str(exc.status_code))
    return Response(orjson.dumps(body), exc.status_code, media_type="application/json")
