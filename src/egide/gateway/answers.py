"""The way back: every answer (whole or streamed) goes through the output filter, gets
its label, and is accounted once complete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from egide.gateway.accounting import Accounting
from egide.gateway.labels import WITHHELD, Cleared, OutputFilter

JSON = dict[str, Any]


def _text_slot(choice: JSON) -> tuple[JSON, str] | None:
    """Where a choice carries its text: (container, key)."""
    for key in ("message", "delta"):
        if isinstance(choice.get(key), dict):
            return choice[key], "content"
    if "text" in choice:
        return choice, "text"
    return None


async def guarded(
    chunks: AsyncIterator[JSON],
    *,
    output: OutputFilter,
    cleared: Cleared,
    accounting: Accounting,
    model: str,
    prompt_digest: str,
) -> AsyncIterator[JSON]:
    usage: dict[str, int] | None = None
    answer: list[str] = []
    try:
        async for chunk in chunks:
            usage = chunk.get("usage") or usage
            choices = chunk.get("choices") or []
            slot = _text_slot(choices[0]) if choices else None
            if chunk.get("object") in ("chat.completion", "text_completion"):
                if slot is not None:
                    container, key = slot
                    text = container.get(key) or ""
                    answer.append(text)
                    if text:
                        container[key] = output.whole(text)
                    if output.withheld:
                        choices[0]["finish_reason"] = "content_filter"
                        container.pop("tool_calls", None)
                chunk["label"] = cleared.header
                yield chunk
                continue
            if slot is not None:
                container, key = slot
                piece = container.get(key) or ""
                if piece:
                    answer.append(piece)
                    container[key] = output.feed(piece)
                if choices[0].get("finish_reason") and not output.withheld:
                    rest = output.finish()
                    if rest:
                        yield _with_text(chunk, key, rest)
                if output.withheld:
                    yield _with_text(chunk, key, WITHHELD, finish="content_filter")
                    break
            yield chunk
    finally:
        # Also when the caller left mid-stream: what was generated is spent and recorded.
        accounting.settle(
            output.caller, model, cleared.header, prompt_digest, "".join(answer), usage
        )


def _with_text(chunk: JSON, key: str, text: str, finish: str | None = None) -> JSON:
    choice = dict(chunk["choices"][0])
    if key == "text":
        choice["text"] = text
    else:
        choice["delta"] = {"content": text}
    choice["finish_reason"] = finish
    return {**chunk, "choices": [choice]}
