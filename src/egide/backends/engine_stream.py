"""Streaming with tools: hold the text back until it is clear whether it is a call.

Text that cannot start a tool call is streamed as it comes. Text that may be a call is
buffered to the end, then sent as ``tool_calls`` deltas, or as text if it was no call.
"""

from __future__ import annotations

from egide.backends.shapes import JSON, chat_chunk
from egide.backends.toolcalls import extract_calls, may_be_call
from egide.protocol.requests import ChatRequest


class ToolStreamFilter:
    def __init__(self, request: ChatRequest) -> None:
        self.request = request
        self.mode: bool | None = True if request.forced_tools() else None
        self.held: list[JSON] = []
        self.text = ""
        self.tail: list[JSON] = []
        self.finish: str | None = None
        self.meta: JSON = {}

    def feed(self, chunk: JSON) -> list[JSON]:
        choices = chunk.get("choices") or []
        if not self.meta and "id" in chunk:
            self.meta = {
                "id": chunk["id"],
                "model": chunk.get("model"),
                "created": chunk.get("created"),
            }
        if not choices:  # the usage chunk: keep it last
            self.tail.append(chunk)
            return []
        choice = choices[0]
        delta = choice.get("delta") or {}
        if delta.get("tool_calls"):  # the engine parsed a call itself: pass everything on
            self.mode = False
            out, self.held = [*self.held, chunk], []
            return out
        self.text += delta.get("content") or ""
        if self.mode is False:
            return [chunk]
        if self.mode is None:
            self.mode = may_be_call(self.text)
            if self.mode is False:
                out, self.held = [*self.held, chunk], []
                return out
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
        else:
            self.held.append(chunk)
        return []

    def close(self) -> list[JSON]:
        if self.mode is False:
            return self.tail
        cid = self.meta.get("id", "chatcmpl")
        model = self.meta.get("model") or ""
        created = self.meta.get("created")
        calls, leftover = extract_calls(self.text, self.request)
        if calls:
            deltas = [{**call, "index": i} for i, call in enumerate(calls)]
            out = [
                chat_chunk(
                    cid,
                    model,
                    {"role": "assistant", "content": None, "tool_calls": deltas},
                    None,
                    created,
                ),
                chat_chunk(cid, model, {}, "tool_calls", created),
            ]
        else:
            content = leftover if leftover else self.text
            out = [
                chat_chunk(cid, model, {"role": "assistant", "content": content}, None, created),
                chat_chunk(cid, model, {}, self.finish or "stop", created),
            ]
        return out + self.tail
