"""A deterministic backend for testing the layers above the model.

It answers with its whole context — every message, role-prefixed — which is the worst
case for any security property that must not depend on the model behaving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from egide.backends.base import Backend, Embeddings, register
from egide.backends.shapes import (
    JSON,
    chat_chunk,
    chat_completion,
    new_id,
    text_completion,
    usage_chunk,
)
from egide.errors import ContextOverflow
from egide.protocol.requests import ChatRequest, CompletionRequest
from egide.types import Capability


@register("fake")
class EchoBackend(Backend):
    capabilities = frozenset(Capability)
    fine_tunable = True
    delay_s = 0.0

    def _echo(self, request: ChatRequest) -> list[str]:
        # options.transform = "upper" echoes in capitals: a model that reformulates, e.g.
        # turns prose into a marking (the worst case for the output filter).
        upper = self.model.options.get("transform") == "upper"
        words: list[str] = []
        for message in request.messages:
            text = f"{message.role}: {message.text()}"
            words.extend((text.upper() if upper else text).split())
        if len(words) > self.model.context_length:
            raise ContextOverflow(
                f"the prompt has {len(words)} tokens but model {self.model.id!r} accepts "
                f"{self.model.context_length}; shorten the messages"
            )
        limit = request.max_tokens or len(words)
        return words[:limit]

    async def chat(self, request: ChatRequest) -> AsyncIterator[JSON]:
        words = self._echo(request)
        prompt_tokens = sum(len(m.text().split()) + 1 for m in request.messages)
        forced = request.forced_tools()
        if forced:
            call = {
                "id": new_id("call"),
                "type": "function",
                "function": {
                    "name": forced[0].function.name,
                    "arguments": orjson.dumps({}).decode(),
                },
            }
            message: JSON = {"role": "assistant", "content": None, "tool_calls": [call]}
            if not request.stream:
                yield chat_completion(self.model.id, message, "tool_calls", prompt_tokens, 1)
                return
            cid = new_id("chatcmpl")
            yield chat_chunk(
                cid, self.model.id, {"role": "assistant", "tool_calls": [{**call, "index": 0}]}
            )
            yield chat_chunk(cid, self.model.id, {}, "tool_calls")
            return
        finish = "length" if request.max_tokens and request.max_tokens <= len(words) else "stop"
        if not request.stream:
            text = " ".join(words)
            message = {"role": "assistant", "content": text}
            yield chat_completion(self.model.id, message, finish, prompt_tokens, len(words))
            return
        cid = new_id("chatcmpl")
        yield chat_chunk(cid, self.model.id, {"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield chat_chunk(cid, self.model.id, {"content": word if i == 0 else f" {word}"})
        yield chat_chunk(cid, self.model.id, {}, finish)
        if request.include_usage:
            yield usage_chunk(cid, self.model.id, prompt_tokens, len(words))

    async def complete(self, request: CompletionRequest) -> AsyncIterator[JSON]:
        words = request.prompt_text().split()
        limit = request.max_tokens or len(words)
        text = " ".join(words[:limit])
        yield text_completion(self.model.id, text, "stop", len(words), len(words[:limit]))

    async def embed(self, texts: list[str], *, input_type: str = "query") -> Embeddings:
        vectors = []
        for text in texts:
            vec = [0.0] * 8
            for i, byte in enumerate(text.encode()):
                vec[i % 8] += byte / 255.0
            norm = sum(v * v for v in vec) ** 0.5 or 1.0
            vectors.append([v / norm for v in vec])
        return Embeddings(vectors=vectors, prompt_tokens=sum(len(t.split()) for t in texts))
