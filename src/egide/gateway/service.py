"""The gateway service: resolve the model, check what it can do, call its backend,
account for the request. Route handlers call exactly one method of :class:`Gateway`."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egide.backends.base import Backend
from egide.backends.shapes import chat_chunk, chat_completion, new_id
from egide.errors import EgideError, InvalidRequest, ModelNotFound, Unsupported
from egide.gateway.accounting import Accounting, sha256_of
from egide.gateway.answers import guarded
from egide.gateway.labels import Cleared, LabelGuard
from egide.gateway.metrics import Metrics
from egide.protocol.requests import ChatRequest, CompletionRequest, EmbeddingRequest
from egide.rag.grounding import NOTHING_FOUND, Grounding
from egide.rag.service import Knowledge
from egide.security.actions import Action
from egide.tenancy import Caller
from egide.types import Capability

JSON = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """An answer and its classification (the ``X-Egide-Label`` header)."""

    label: str
    body: JSON | AsyncIterator[JSON]


class Gateway:
    def __init__(
        self,
        backends: dict[str, Backend],
        metrics: Metrics,
        guard: LabelGuard,
        accounting: Accounting,
        knowledge: Knowledge,
    ) -> None:
        self.knowledge = knowledge
        self.backends = backends
        self.metrics = metrics
        self.guard = guard
        self.accounting = accounting
        self.created = int(time.time())

    # -- models -----------------------------------------------------------------------

    def list_models(self, caller: Caller) -> JSON:
        """The models the caller may use: a model above their clearance, or owned by an
        organisation outside their branch, is not listed."""
        data = [self._card(b) for b in self._usable(caller)]
        return {"object": "list", "data": data}

    def get_model(self, caller: Caller, model_id: str) -> JSON:
        return self._card(self._cleared(caller, model_id))

    def adapter_file(self, caller: Caller, model_id: str) -> Path:
        """The GGUF LoRA of a fine-tuned model, for a caller who may use it."""
        backend = self._cleared(caller, model_id)
        if not backend.model.lora:
            raise Unsupported(
                f"model {model_id!r} has no adapter to download: only fine-tuned models "
                "(ft:...) do",
                param="model",
            )
        return Path(backend.model.lora)

    def _cleared(self, caller: Caller, model_id: str) -> Backend:
        """The model's backend, once the caller's use of it is decided (and audited)."""
        backend = self._backend(model_id, caller=caller)
        self.guard.clear(caller, Action.USE_MODEL, backend.model, None)
        return backend

    def _usable(self, caller: Caller) -> list[Backend]:
        return [b for b in self.backends.values() if self.guard.may_use(caller, b.model)]

    def _card(self, backend: Backend) -> JSON:
        model = backend.model
        caps = {c.value for c in model.capabilities}
        tuned = {"type": "fine-tuned", "job": model.job, "root": model.root} if model.job else {}
        return {
            "id": model.id,
            "object": "model",
            "created": self.created,
            "owned_by": model.owned_by,
            "max_context_length": model.context_length,
            "capabilities": {
                "completion_chat": "chat" in caps,
                "completion_fim": False,
                "function_calling": "tools" in caps,
                "fine_tuning": backend.fine_tunable and not model.lora,
                "vision": False,
                "embeddings": "embeddings" in caps,
                "json_schema": "json_schema" in caps,
            },
            "type": "base",
            "label": self.guard.header(model),
            **tuned,
        }

    def _backend(
        self, model_id: str, capability: Capability | None = None, caller: Caller | None = None
    ) -> Backend:
        backend = self.backends.get(model_id)
        if backend is None:
            names = self._usable(caller) if caller else self.backends.values()
            known = ", ".join(sorted(b.model.id for b in names)) or "none"
            raise ModelNotFound(
                f"the model {model_id!r} does not exist here; use one of: {known} "
                "(GET /v1/models lists them)",
                param="model",
            )
        if capability is not None and capability not in backend.model.capabilities:
            fitting = sorted(
                b.model.id for b in self.backends.values() if capability in b.model.capabilities
            )
            raise Unsupported(
                f"model {model_id!r} does not support {capability.value}; models that do: "
                f"{', '.join(fitting) or 'none'}",
                param="model",
            )
        return backend

    # -- inference --------------------------------------------------------------------

    async def chat(
        self, caller: Caller, request: ChatRequest, marking: str | None = None
    ) -> Answer:
        backend = self._backend(request.model, Capability.CHAT, caller)
        if request.tools and request.tool_choice != "none":
            self._require(backend, Capability.TOOLS, "tools")
        if request.response_format and request.response_format.type != "text":
            self._require(backend, Capability.JSON_SCHEMA, "response_format")
        if request.stream:
            self._require(backend, Capability.STREAMING, "stream")
        cleared = self.guard.clear(caller, Action.CHAT, backend.model, marking)
        self.guard.check_prompt(caller, request, cleared)
        if request.library_ids:
            return await self._grounded(caller, cleared, backend, request)
        prompt = [m.model_dump(exclude_none=True) for m in request.messages]
        return await self._answer(
            caller, cleared, backend, "chat", backend.chat(request), request, prompt
        )

    async def _grounded(
        self, caller: Caller, cleared: Cleared, backend: Backend, request: ChatRequest
    ) -> Answer:
        """Retrieval on the server: the prompt gets the authorised sources; the answer's
        label is the join of the request's, the model's and every source's."""
        question = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
        if not question.strip():
            raise InvalidRequest(
                "a chat grounded on a document library needs a user message to search for",
                param="messages",
            )
        grounding = await self.knowledge.ground(caller, tuple(request.library_ids), question)
        if grounding is None:
            results = _fixed_answer(backend.model.id, NOTHING_FOUND, request.stream)
            answer = await self._answer(
                caller, cleared, backend, "chat", results, request, request.messages[-1].text()
            )
            return Answer(answer.label, _cite(answer.body, []))
        cleared = Cleared(cleared.working, cleared.answer.join(grounding.label))
        grounded = _with_sources(request, grounding)
        prompt = [m.model_dump(exclude_none=True) for m in grounded.messages]
        answer = await self._answer(
            caller, cleared, backend, "chat", backend.chat(grounded), grounded, prompt
        )
        return Answer(answer.label, _cite(answer.body, grounding.citations))

    async def complete(
        self, caller: Caller, request: CompletionRequest, marking: str | None = None
    ) -> Answer:
        backend = self._backend(request.model, Capability.COMPLETIONS, caller)
        cleared = self.guard.clear(caller, Action.COMPLETE, backend.model, marking)
        as_chat = ChatRequest.model_validate(
            {
                "model": request.model,
                "messages": [{"role": "user", "content": request.prompt_text()}],
            }
        )
        self.guard.check_prompt(caller, as_chat, cleared)
        return await self._answer(
            caller,
            cleared,
            backend,
            "completions",
            backend.complete(request),
            request,
            request.prompt_text(),
        )

    async def _answer(
        self,
        caller: Caller,
        cleared: Cleared,
        backend: Backend,
        endpoint: str,
        results: AsyncIterator[JSON],
        request: ChatRequest | CompletionRequest,
        prompt: object,
    ) -> Answer:
        self.accounting.admit(caller, backend.model.id)
        chunks = guarded(
            results,
            output=self.guard.output_filter(caller),
            cleared=cleared,
            accounting=self.accounting,
            model=backend.model.id,
            prompt_digest=sha256_of(prompt),
        )
        body = await self._run(
            backend.model.id, endpoint, chunks, request.stream, request.include_usage
        )
        return Answer(cleared.header, body)

    async def embed(self, caller: Caller, request: EmbeddingRequest) -> JSON:
        backend = self._backend(request.model, Capability.EMBEDDINGS, caller)
        if request.dimensions is not None:
            raise InvalidRequest(
                "'dimensions' is not supported: the embedding size is fixed by the model; "
                "drop the parameter",
                param="dimensions",
            )
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await backend.embed(request.texts(), input_type=request.input_type)
            outcome = "ok"
        except EgideError as exc:
            outcome = _outcome(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(backend.model.id, "embeddings", outcome, elapsed)
        self.metrics.tokens.labels(backend.model.id, "in").inc(result.prompt_tokens)
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(vec, request.encoding_format)}
            for i, vec in enumerate(result.vectors)
        ]
        tokens = result.prompt_tokens
        return {
            "id": f"embd-{uuid.uuid4().hex}",
            "object": "list",
            "data": data,
            "model": backend.model.id,
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        }

    def _require(self, backend: Backend, capability: Capability, param: str) -> None:
        if capability not in backend.model.capabilities:
            raise Unsupported(
                f"model {backend.model.id!r} does not support '{param}' "
                f"({capability.value}); drop it or pick a model that lists it",
                param=param,
            )

    async def _run(
        self,
        model: str,
        endpoint: str,
        results: AsyncIterator[JSON],
        stream: bool,
        include_usage: bool,
    ) -> JSON | AsyncIterator[JSON]:
        started = time.perf_counter()
        try:
            first = await anext(results)
        except StopAsyncIteration:
            first = None
        except EgideError as exc:
            self.metrics.observe(model, endpoint, _outcome(exc), time.perf_counter() - started)
            raise
        if not stream:
            if first is None:
                raise InvalidRequest("the backend returned nothing")
            close = getattr(results, "aclose", None)
            if close is not None:
                await close()
            self.metrics.count_tokens(model, first.get("usage"))
            self.metrics.observe(model, endpoint, "ok", time.perf_counter() - started)
            return first
        self.metrics.first_token.labels(model).observe(time.perf_counter() - started)
        return self._metered(model, endpoint, first, results, include_usage, started)

    async def _metered(
        self,
        model: str,
        endpoint: str,
        first: JSON | None,
        rest: AsyncIterator[JSON],
        include_usage: bool,
        started: float,
    ) -> AsyncIterator[JSON]:
        outcome = "interrupted"
        try:
            if first is not None and self._keep(model, first, include_usage):
                yield first
            async for chunk in rest:
                if self._keep(model, chunk, include_usage):
                    yield chunk
            outcome = "ok"
        except EgideError as exc:
            outcome = _outcome(exc)
            raise
        finally:
            self.metrics.observe(model, endpoint, outcome, time.perf_counter() - started)

    def _keep(self, model: str, chunk: JSON, include_usage: bool) -> bool:
        usage = chunk.get("usage")
        if usage is None:
            return True
        self.metrics.count_tokens(model, usage)
        if include_usage:
            return True
        if chunk.get("choices"):
            del chunk["usage"]
            return True
        return False

    # -- health -----------------------------------------------------------------------

    def health(self) -> JSON:
        models = {}
        for model_id, backend in self.backends.items():
            health = backend.health()
            models[model_id] = {
                "ok": health.ok,
                "backend": backend.kind,
                "detail": health.detail,
                **health.extra,
            }
        ok = all(m["ok"] for m in models.values())
        return {"status": "ok" if ok else "degraded", "models": models}


def _with_sources(request: ChatRequest, grounding: Grounding) -> ChatRequest:
    system = {"role": "system", "content": grounding.system}
    messages = [system, *(m.model_dump(exclude_none=True) for m in request.messages)]
    return ChatRequest.model_validate(
        {**request.model_dump(exclude_none=True), "messages": messages, "library_ids": []}
    )


def _cite(body: JSON | AsyncIterator[JSON], citations: list[JSON]) -> JSON | AsyncIterator[JSON]:
    """Citations travel with the answer: in the body, or in the first streamed chunk."""
    if isinstance(body, dict):
        body["citations"] = citations
        return body

    async def stream() -> AsyncIterator[JSON]:
        first = True
        async for chunk in body:
            if first:
                chunk["citations"] = citations
                first = False
            yield chunk

    return stream()


async def _fixed_answer(model: str, text: str, stream: bool) -> AsyncIterator[JSON]:
    """An answer written by Égide itself, in the model's response shape."""
    if not stream:
        message = {"role": "assistant", "content": text}
        yield chat_completion(model, message, "stop", 0, 0)
        return
    cid = new_id("chatcmpl")
    yield chat_chunk(cid, model, {"role": "assistant", "content": text})
    yield chat_chunk(cid, model, {}, "stop")


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector


def _outcome(exc: EgideError) -> str:
    """kebab-case error kind, e.g. ContextOverflow → context-overflow."""
    name = type(exc).__name__
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
