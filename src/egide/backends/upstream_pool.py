"""The deployments of one upstream model: their health, and what their errors mean.

Used by :mod:`egide.backends.upstream`. Nothing here sends inference requests.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from egide.backends.base import Health
from egide.config import DeploymentConfig
from egide.errors import ContextOverflow, EgideError, InvalidRequest

# Statuses after which the next deployment may well succeed.
FAILOVER_STATUSES = frozenset({408, 429, 502, 503, 504})
HEALTH_TIMEOUT_S = 2.0
_CONTEXT = re.compile(r"context (length|size|window)|exceed_context|too many tokens", re.I)


@dataclass(eq=False)
class Deployment:
    """One upstream server for a model, and what Égide last saw of it."""

    url: str
    model: str
    auth: dict[str, str]
    headers: dict[str, str] = field(init=False)
    healthy: bool = True
    last_error: str | None = None

    def __post_init__(self) -> None:
        self.headers = {"Content-Type": "application/json", **self.auth}

    @classmethod
    def from_config(cls, config: DeploymentConfig, model_id: str) -> Deployment:
        auth = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        return cls(url=config.url, model=config.model or model_id, auth=auth)

    def mark_ok(self) -> None:
        self.healthy = True
        self.last_error = None

    def mark_failed(self, reason: str) -> None:
        self.healthy = False
        self.last_error = reason

    @property
    def health_fallback_url(self) -> str:
        """The server root's ``/health`` (llama.cpp, TGI) for a ``.../v1`` base URL."""
        root = self.url.removesuffix("/v1")
        return f"{root}/health"


class DeploymentPool:
    """Deployments in configured order; routing prefers the ones marked healthy."""

    def __init__(self, deployments: list[Deployment]) -> None:
        self.deployments = deployments

    def candidates(self) -> list[Deployment]:
        """Healthy deployments in order, or all of them if none is (the marks may be stale)."""
        healthy = [d for d in self.deployments if d.healthy]
        return healthy or self.deployments

    def skipped(self, tried: list[Deployment]) -> list[Deployment]:
        return [d for d in self.deployments if d not in tried]

    def health(self) -> Health:
        up = sum(d.healthy for d in self.deployments)
        return Health(
            ok=up > 0,
            detail=f"{up}/{len(self.deployments)} deployments healthy",
            extra={
                "deployments": [
                    {"url": d.url, "healthy": d.healthy, "last_error": d.last_error}
                    for d in self.deployments
                ]
            },
        )

    async def watch(self, session: aiohttp.ClientSession, interval_s: float) -> None:
        """Probe every deployment now, then every ``interval_s`` seconds, until cancelled."""
        timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
        while True:
            await asyncio.gather(*(_probe(session, d, timeout) for d in self.deployments))
            await asyncio.sleep(interval_s)


async def _probe(
    session: aiohttp.ClientSession, deployment: Deployment, timeout: aiohttp.ClientTimeout
) -> None:
    url = f"{deployment.url}/models"
    try:
        async with session.get(url, headers=deployment.auth, timeout=timeout) as resp:
            await resp.read()
            status = resp.status
        if status == 404:
            url = deployment.health_fallback_url
            async with session.get(url, headers=deployment.auth, timeout=timeout) as resp:
                await resp.read()
                status = resp.status
    except Exception as exc:  # keep probing whatever happens: this runs unattended
        deployment.mark_failed(f"health check GET {url}: {describe(exc, HEALTH_TIMEOUT_S)}")
        return
    if status == 200:
        deployment.mark_ok()
    elif status in (401, 403):
        deployment.mark_failed(
            f"health check GET {url}: HTTP {status}; set the deployment's api_key "
            "to a key this server accepts"
        )
    else:
        deployment.mark_failed(f"health check GET {url}: HTTP {status}")


def describe(exc: BaseException, timeout_s: float) -> str:
    """A short, human reason for a transport failure."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"no connection within {timeout_s:g} s (connect_timeout_s)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "cannot connect: connection refused (is the server running?)"
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed before any response"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "connection lost in the middle of the response"
    if isinstance(exc, TimeoutError):
        return f"no response within {timeout_s:g} s (read_timeout_s)"
    return f"{type(exc).__name__}: {exc}"


def upstream_error(raw: bytes) -> tuple[str, dict[str, Any]]:
    """The message of an upstream error body, and its ``error`` object (maybe empty).

    Understands the OpenAI envelope ``{"error": {"message": ...}}`` (vLLM, llama.cpp),
    TGI's ``{"error": "...", "error_type": ...}`` and FastAPI's ``{"detail": ...}``.
    """
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace").strip()[:500] or "(empty body)", {}
    if not isinstance(payload, dict):
        return str(payload)[:500], {}
    error = payload.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error), error
    if isinstance(error, str):
        return error, {"type": payload.get("error_type")}
    return str(payload.get("detail") or payload.get("message") or payload)[:500], {}


def caller_error(status: int | None, raw: bytes, model_id: str) -> EgideError | None:
    """The error to give the caller for an upstream refusal, or None to fail over.

    ``status`` None means an error object received inside a 200 stream.
    """
    message, error = upstream_error(raw)
    if _CONTEXT.search(message) or _CONTEXT.search(str(error.get("type") or "")):
        return ContextOverflow(
            f"{message} (model {model_id!r}: shorten the messages or lower max_tokens)"
        )
    if status is not None and 400 <= status < 500 and status not in FAILOVER_STATUSES:
        if status in (401, 403):
            return None  # the gateway's own key to the upstream is wrong: not the caller's fault
        param = error.get("param")
        return InvalidRequest(message, param=param if isinstance(param, str) else None)
    return None
