"""A model served by OpenAI-compatible servers inside the enclave (vLLM, llama.cpp, TGI).

Requests go to the model's deployments in configured order: connection failures are
retried on the same deployment, then the next healthy one is tried, as it is after a
502/503/504. A background task probes every deployment so that routing skips dead ones.
The hot path is one ``model_dump``, one ``orjson.dumps`` and a pooled keep-alive POST.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import orjson
from aiohttp.http_exceptions import HttpProcessingError

from egide.backends.base import JSON, Backend, Embeddings, Health, Progress, register
from egide.backends.upstream_pool import (
    FAILOVER_STATUSES,
    Deployment,
    DeploymentPool,
    caller_error,
    describe,
    upstream_error,
)
from egide.config import ModelConfig, Settings
from egide.errors import ConfigError, EgideError, Overloaded, UpstreamError
from egide.protocol.requests import ChatRequest, CompletionRequest
from egide.types import Capability

# Failures that happen before the upstream saw the request: safe to send it again.
_CONNECTION_ERRORS = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientConnectionResetError,
)
_BACKOFF_S = 0.05  # 50 ms, then 100 ms, ...
_MAX_EVENT_BYTES = 16 * 1024 * 1024
# Below the 5 s keep-alive of uvicorn (vLLM) and llama.cpp, so that Égide never reuses a
# connection the server is closing.
_KEEPALIVE_S = 4.0


@register("openai")
class OpenAICompatible(Backend):
    """Routes a model to the OpenAI-compatible servers listed in ``model.deployments``."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.CHAT,
            Capability.COMPLETIONS,
            Capability.EMBEDDINGS,
            Capability.STREAMING,
            Capability.TOOLS,
            Capability.JSON_SCHEMA,
        }
    )

    def __init__(self, model: ModelConfig, settings: Settings, artefact: Path | None) -> None:
        super().__init__(model, settings, artefact)
        if not model.deployments:
            raise ConfigError(
                f"model {model.id!r} uses backend 'openai' but lists no deployments; add one "
                'under the model in egide.toml: deployments = [{url = "http://host:8000/v1"}]'
            )
        self._pool = DeploymentPool(
            [Deployment.from_config(d, model.id) for d in model.deployments]
        )
        self._session: aiohttp.ClientSession | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(self, progress: Progress | None = None) -> None:
        connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=_KEEPALIVE_S)
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.settings.connect_timeout_s,
            sock_read=self.settings.read_timeout_s,
        )
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        self._watcher = asyncio.create_task(
            self._pool.watch(self._session, self.settings.health_interval_s),
            name=f"egide-health-{self.model.id}",
        )

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def health(self) -> Health:
        return self._pool.health()

    async def chat(self, request: ChatRequest) -> AsyncIterator[JSON]:
        async for item in self._relay("/chat/completions", request):
            yield item

    async def complete(self, request: CompletionRequest) -> AsyncIterator[JSON]:
        async for item in self._relay("/completions", request):
            yield item

    async def embed(self, texts: list[str], *, input_type: str = "query") -> Embeddings:
        # The OpenAI embeddings API has no input_type: the upstream model decides.
        payload: JSON = {"model": self.model.id, "input": texts, "encoding_format": "float"}
        deployment, resp = await self._open("/embeddings", payload)
        data = await self._read_json(deployment, resp)
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            vectors = [row["embedding"] for row in rows]
            usage = data.get("usage") or {}
            tokens = int(usage.get("prompt_tokens") or 0)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise UpstreamError(
                f"model {self.model.id!r}: {deployment.url}/embeddings answered without a "
                f"'data' list of embeddings ({exc!r}); check that this server runs an "
                "embedding model"
            ) from exc
        if len(vectors) != len(texts):
            raise UpstreamError(
                f"model {self.model.id!r}: {deployment.url}/embeddings returned "
                f"{len(vectors)} vectors for {len(texts)} inputs; check the upstream server"
            )
        return Embeddings(vectors=vectors, prompt_tokens=tokens)

    async def _relay(
        self, path: str, request: ChatRequest | CompletionRequest
    ) -> AsyncIterator[JSON]:
        payload = request.model_dump(exclude_none=True, by_alias=True)
        if not request.stream:
            payload.pop("stream_options", None)  # vLLM refuses it without stream
            deployment, resp = await self._open(path, payload)
            data = await self._read_json(deployment, resp)
            data["model"] = self.model.id
            yield data
            return
        # Always ask for usage so that tokens are accounted; the gateway drops the usage
        # chunk when the caller did not ask for it.
        payload["stream_options"] = {"include_usage": True}
        deployment, resp = await self._open(path, payload)
        async for chunk in self._events(deployment, resp):
            yield chunk

    async def _events(
        self, deployment: Deployment, resp: aiohttp.ClientResponse
    ) -> AsyncIterator[JSON]:
        """Parse the upstream's SSE stream; nothing is retried once a chunk is out."""
        model_id = self.model.id
        content = resp.content
        done = False
        try:
            while line := await content.readline(max_line_length=_MAX_EVENT_BYTES):
                if not line.startswith(b"data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" lines
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    break
                chunk = orjson.loads(data)
                if "error" in chunk and not chunk.get("choices"):
                    error = caller_error(None, data, model_id)
                    reason = "error in stream: " + upstream_error(data)[0]
                    raise error or self._failed([(deployment, reason)])
                chunk["model"] = model_id
                yield chunk
            if done:
                await resp.read()  # the chunked terminator: keeps the connection reusable
        except (aiohttp.ClientError, TimeoutError, HttpProcessingError, ValueError) as exc:
            reason = describe(exc, self.settings.read_timeout_s)
            deployment.mark_failed(reason)
            raise UpstreamError(
                f"model {model_id!r}: {deployment.url} broke off the stream ({reason}); the "
                "answer is incomplete: send the request again"
            ) from exc
        finally:
            if done:
                resp.release()
            else:
                resp.close()  # tells the upstream to stop generating

    async def _read_json(self, deployment: Deployment, resp: aiohttp.ClientResponse) -> JSON:
        try:
            raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = describe(exc, self.settings.read_timeout_s)
            deployment.mark_failed(reason)
            raise self._failed([(deployment, reason)]) from exc
        finally:
            resp.release()
        try:
            data: JSON = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"model {self.model.id!r}: {deployment.url} answered 200 with a body that is "
                f"not JSON ({raw[:80]!r}); check that the deployment url is the server's "
                "OpenAI-compatible base (usually ending in /v1)"
            ) from exc
        return data

    async def _open(
        self, path: str, payload: dict[str, Any]
    ) -> tuple[Deployment, aiohttp.ClientResponse]:
        """POST to the first deployment that answers 200; the caller releases the response."""
        session = self._session
        if session is None:
            raise RuntimeError(f"backend for {self.model.id!r} used before start()")
        failures: list[tuple[Deployment, str]] = []
        bodies: dict[str, bytes] = {}
        tried: list[Deployment] = []
        retries = self.settings.connect_retries
        for deployment in self._pool.candidates():
            tried.append(deployment)
            body = bodies.get(deployment.model)
            if body is None:
                payload["model"] = deployment.model
                body = bodies[deployment.model] = orjson.dumps(payload)
            url = deployment.url + path
            for attempt in range(retries + 1):
                if attempt:
                    await asyncio.sleep(_BACKOFF_S * attempt)
                try:
                    resp = await session.post(url, data=body, headers=deployment.headers)
                except _CONNECTION_ERRORS as exc:
                    reason = describe(exc, self.settings.connect_timeout_s)
                    if attempt == retries:
                        reason += f" ({retries + 1} attempts)"
                    continue
                except (aiohttp.ClientError, TimeoutError) as exc:
                    reason = describe(exc, self.settings.read_timeout_s)
                    break
                if resp.status == 200:
                    deployment.mark_ok()
                    return deployment, resp
                reason = await self._refusal(deployment, resp)
                break
            deployment.mark_failed(reason)
            failures.append((deployment, reason))
        for deployment in self._pool.skipped(tried):
            failures.append((deployment, f"skipped: unhealthy ({deployment.last_error})"))
        raise self._failed(failures)

    async def _refusal(self, deployment: Deployment, resp: aiohttp.ClientResponse) -> str:
        """Raise the caller's error for a final refusal; return the reason to fail over."""
        try:
            raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            raw = b""
        finally:
            resp.release()
        status = resp.status
        error = caller_error(status, raw, self.model.id)
        if error is not None:
            raise error
        reason = f"HTTP {status}: {upstream_error(raw)[0]}"
        if status in (401, 403):
            return reason + "; set the deployment's api_key to a key this server accepts"
        if status not in FAILOVER_STATUSES:
            raise UpstreamError(
                f"model {self.model.id!r}: {deployment.url} failed: {reason}; see that "
                "server's logs"
            )
        return reason

    def _failed(self, failures: list[tuple[Deployment, str]]) -> EgideError:
        if failures and all(reason.startswith("HTTP 429") for _, reason in failures):
            return Overloaded(
                f"model {self.model.id!r}: every deployment is rate-limiting (HTTP 429); "
                "retry later or add deployments",
                retry_after=1,
            )
        detail = "; ".join(f"{d.url}: {reason}" for d, reason in failures)
        return UpstreamError(
            f"model {self.model.id!r} is unavailable: {detail}. Check that these servers are "
            "running and reachable from the gateway (GET <url>/models should answer 200), "
            "and that the model's deployments in the configuration are right"
        )
