"""The embedded engine: llama.cpp in-process, with continuous batching over parallel slots.

``xllamacpp`` wraps llama.cpp's own server loop: requests submitted from several threads
are decoded together in one batch. Égide admits at most ``parallel + queue_size``
requests per model and refuses the rest with :class:`~egide.errors.Overloaded` (503).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from egide.backends.base import Backend, Health, Progress, register
from egide.backends.engine_stream import ToolStreamFilter
from egide.backends.shapes import JSON
from egide.backends.toolcalls import extract_calls, forced_call_schema
from egide.errors import ContextOverflow, EngineError, InvalidRequest, Overloaded
from egide.protocol.requests import ChatRequest, CompletionRequest
from egide.types import Capability

_DONE = object()
_DROP = ("model", "user", "n", "parallel_tool_calls", "tool_choice", "stream_options")


@register("embedded")
class EmbeddedLlama(Backend):
    capabilities = frozenset(
        {
            Capability.CHAT,
            Capability.COMPLETIONS,
            Capability.STREAMING,
            Capability.TOOLS,
            Capability.JSON_SCHEMA,
        }
    )

    fine_tunable = True
    _server: Any = None
    _pool: ThreadPoolExecutor | None = None

    async def start(self, progress: Progress | None = None) -> None:
        import xllamacpp

        if self.artefact is None:
            raise EngineError(f"model {self.model.id!r} has no GGUF file to load")
        params = xllamacpp.CommonParams()
        params.model.path = self.model.merged or str(self.artefact)
        if self.model.lora and not self.model.merged:
            # The base's weights are memory-mapped: another engine on the same file shares
            # their pages, so an adapted model costs its adapter and its KV cache only.
            params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(self.model.lora, 1.0)]
        params.n_parallel = self.model.parallel
        params.n_ctx = self.model.context_length * self.model.parallel
        threads = self.settings.threads or os.cpu_count() or 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.use_jinja = True
        params.offline = True
        # llama.cpp logs several lines per request: only with log_level = "debug".
        params.verbosity = 3 if self.settings.log_level == "debug" else 0
        # llama.cpp always opens its own HTTP listener: keep it on loopback, on a random
        # port, behind a key nobody knows, so that nothing bypasses Égide's checks.
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.api_keys = [secrets.token_urlsafe(32)]
        if progress:
            progress(f"loading {self.model.id}", 0.0)
        self._server = await asyncio.to_thread(xllamacpp.Server, params)
        self._pool = ThreadPoolExecutor(
            max_workers=self.model.parallel + self.model.queue_size,
            thread_name_prefix=f"engine-{self.model.id}",
        )
        self._admitted = 0
        self._lock = threading.Lock()
        if progress:
            progress(f"loaded {self.model.id}", 1.0)

    async def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._server = None

    def health(self) -> Health:
        ok = self._server is not None
        return Health(
            ok=ok,
            detail="loaded" if ok else "not loaded",
            extra={"in_flight": getattr(self, "_admitted", 0), "parallel": self.model.parallel},
        )

    # -- requests ---------------------------------------------------------------------

    async def chat(self, request: ChatRequest) -> AsyncIterator[JSON]:
        body = self._chat_body(request)
        handler = self._server.handle_chat_completions
        if not request.stream:
            result = await self._call(handler, body)
            yield self._finish_message(result, request)
            return
        tools_filter = ToolStreamFilter(request) if _may_call_tools(request) else None
        async for chunk in self._stream(handler, body):
            if tools_filter is None:
                yield chunk
            else:
                for out in tools_filter.feed(chunk):
                    yield out
        if tools_filter is not None:
            for out in tools_filter.close():
                yield out

    async def complete(self, request: CompletionRequest) -> AsyncIterator[JSON]:
        body = request.model_dump(exclude_none=True, by_alias=True)
        for key in _DROP:
            body.pop(key, None)
        body["prompt"] = request.prompt_text()
        handler = self._server.handle_completions
        if not request.stream:
            yield self._clean(await self._call(handler, body))
            return
        body["stream_options"] = {"include_usage": True}
        async for chunk in self._stream(handler, body):
            yield chunk

    # -- plumbing ---------------------------------------------------------------------

    def _chat_body(self, request: ChatRequest) -> JSON:
        body = request.model_dump(exclude_none=True, by_alias=True)
        for key in _DROP:
            body.pop(key, None)
        for message, wire in zip(request.messages, body["messages"], strict=True):
            if isinstance(message.content, list):
                wire["content"] = message.text()
            wire.pop("prefix", None)
        if request.tool_choice == "none":
            body.pop("tools", None)
        forced = request.forced_tools()
        if forced and request.response_format is None:
            body["json_schema"] = forced_call_schema(forced)
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _admit(self) -> None:
        limit = self.model.parallel + self.model.queue_size
        with self._lock:
            if self._admitted >= limit:
                raise Overloaded(
                    f"model {self.model.id!r} is busy: {self.model.parallel} requests running "
                    f"and {self.model.queue_size} waiting; retry shortly, or raise "
                    "'parallel'/'queue_size' for this model in egide.toml",
                    retry_after=1,
                )
            self._admitted += 1

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    async def _call(self, handler: Callable[..., Any], body: JSON) -> JSON:
        if self._server is None:
            raise EngineError(f"model {self.model.id!r} is not loaded yet; retry in a moment")
        self._admit()
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._pool, handler, body)
        finally:
            self._release()
        return self._check(result)

    async def _stream(self, handler: Callable[..., Any], body: JSON) -> AsyncIterator[JSON]:
        if self._server is None:
            raise EngineError(f"model {self.model.id!r} is not loaded yet; retry in a moment")
        self._admit()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def on_chunk(chunk: JSON) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
            return stop.is_set()

        def run() -> None:
            try:
                result = handler(body, on_chunk)
                if isinstance(result, dict) and "error" in result:
                    loop.call_soon_threadsafe(queue.put_nowait, result)
            finally:
                # Released when the engine is done, not when the caller left: admission
                # reflects what the engine is really busy with.
                self._release()
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        try:
            future = loop.run_in_executor(self._pool, run)
        except BaseException:
            self._release()
            raise
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                yield self._clean(self._check(item))
        finally:
            stop.set()  # the engine cancels the sequence at its next token
            if not future.done():
                future.add_done_callback(lambda f: f.exception())

    def _check(self, result: Any) -> JSON:
        if not isinstance(result, dict):
            raise EngineError(f"the engine returned {type(result).__name__}, not a JSON object")
        error = result.get("error")
        if error is None:
            return result
        message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
        kind = error.get("type", "") if isinstance(error, dict) else ""
        if kind == "exceed_context_size_error" or "context size" in message:
            n_prompt = error.get("n_prompt_tokens") if isinstance(error, dict) else None
            raise ContextOverflow(
                f"the prompt has {n_prompt or 'too many'} tokens but model {self.model.id!r} "
                f"accepts {self.model.context_length} per request; shorten the messages "
                "or lower max_tokens",
                param="messages",
            )
        code = error.get("code", 500) if isinstance(error, dict) else 500
        if isinstance(code, int) and 400 <= code < 500:
            raise InvalidRequest(f"the engine refused the request: {message}")
        raise EngineError(f"the engine failed: {message}")

    def _clean(self, result: JSON) -> JSON:
        result["model"] = self.model.id
        result.pop("timings", None)
        return result

    def _finish_message(self, result: JSON, request: ChatRequest) -> JSON:
        result = self._clean(result)
        if not _may_call_tools(request):
            return result
        choice = result["choices"][0]
        message = choice["message"]
        if message.get("tool_calls"):
            return result
        calls, leftover = extract_calls(message.get("content") or "", request)
        if calls:
            message["tool_calls"] = calls
            message["content"] = leftover or None
            choice["finish_reason"] = "tool_calls"
        elif leftover != (message.get("content") or "").strip():
            message["content"] = leftover or message.get("content")
        return result


def _may_call_tools(request: ChatRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"
