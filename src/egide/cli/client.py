"""A small HTTP client for a running Égide server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from egide.config import default_home


@dataclass(frozen=True)
class Target:
    url: str
    key: str | None


def resolve_target(url: str | None, key: str | None) -> Target:
    base = (url or os.environ.get("EGIDE_URL") or "http://127.0.0.1:8000").rstrip("/")
    if key is None:
        key = os.environ.get("EGIDE_API_KEY")
    if key is None:
        home = Path(os.environ.get("EGIDE_HOME") or default_home())
        key_file = home / "admin.key"
        if key_file.exists():
            key = key_file.read_text().strip()
    return Target(base, key)


class ServerUnreachable(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _headers(target: Target) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.key}"} if target.key else {}


async def get_json(target: Target, path: str) -> Any:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.get(target.url + path, headers=_headers(target)) as resp,
        ):
            body = await resp.read()
    except aiohttp.ClientConnectionError as exc:
        raise ServerUnreachable(str(exc)) from exc
    return _decode(resp.status, body)


async def stream_chat(target: Target, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=3, sock_read=600)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                target.url + "/v1/chat/completions", json=payload, headers=_headers(target)
            ) as resp,
        ):
            if resp.status != 200:
                _decode(resp.status, await resp.read())
            async for line in resp.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    return
                chunk = orjson.loads(data)
                if "error" in chunk:
                    raise ApiError(500, chunk["error"].get("message", "stream failed"))
                yield chunk
    except aiohttp.ClientConnectionError as exc:
        raise ServerUnreachable(str(exc)) from exc


def _decode(status: int, body: bytes) -> Any:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = {"error": {"message": body.decode(errors="replace")}}
    if status >= 400:
        message = data.get("error", {}).get("message", "") if isinstance(data, dict) else ""
        raise ApiError(status, message or f"HTTP {status}")
    return data


async def request_json(
    target: Target,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> Any:
    """One JSON request; the decoded answer, or :class:`ApiError` with the server's message."""
    query = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.request(
                method, target.url + path, json=body, params=query, headers=_headers(target)
            ) as resp,
        ):
            raw = await resp.read()
    except aiohttp.ClientConnectionError as exc:
        raise ServerUnreachable(str(exc)) from exc
    return _decode(resp.status, raw)


async def upload_file(
    target: Target, path: str, filename: str, data: bytes, fields: dict[str, str]
) -> Any:
    """A multipart upload with one ``file`` part; the decoded answer or :class:`ApiError`."""
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session,
            session.post(target.url + path, data=form, headers=_headers(target)) as resp,
        ):
            raw = await resp.read()
    except aiohttp.ClientConnectionError as exc:
        raise ServerUnreachable(str(exc)) from exc
    return _decode(resp.status, raw)
