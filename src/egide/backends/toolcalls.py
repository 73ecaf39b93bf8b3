"""Tool calling for engines whose chat template shows tools but whose parser misses
the model's way of answering with a call (small models often emit a bare or fenced JSON
object instead of ``<tool_call>`` tags).

When the caller forces a call (``tool_choice`` "required"/"any" or a named function) the
engine is constrained by a JSON-schema grammar, so the call always parses. When the model
may choose (``auto``), its text is inspected for a call to one of the declared tools.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from egide.backends.shapes import new_id
from egide.protocol.requests import ChatRequest, Tool

JSON = dict[str, Any]

_DECODER = json.JSONDecoder()
_TAG = "<tool_call>"
_FENCE = re.compile(r"```(?:json|tool_call)?\s*(.*?)```", re.DOTALL)
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def forced_call_schema(tools: list[Tool]) -> JSON:
    """A schema whose every instance is one call to one of ``tools``."""
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.function.name},
                "arguments": tool.function.parameters or {"type": "object"},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    return variants[0] if len(variants) == 1 else {"oneOf": variants}


def may_be_call(text: str) -> bool | None:
    """Whether streamed text so far could be a tool call: None while undecided."""
    stripped = text.lstrip()
    if not stripped:
        return None
    if stripped[0] in "{`" or stripped.startswith(_TAG):
        return True
    return None if _TAG.startswith(stripped) else False


def extract_calls(text: str, request: ChatRequest) -> tuple[list[JSON], str]:
    """Find calls to declared tools in ``text``: (calls, text left over).

    A call identical to one already answered in the conversation is not issued again
    (small models tend to repeat the call before they answer).
    """
    names = {tool.function.name for tool in request.tools or []}
    answered = _answered_calls(request)
    calls: list[JSON] = []
    leftover = text
    for candidate, span in _candidates(text):
        name = candidate.get("name")
        arguments = candidate.get("arguments", candidate.get("parameters", {}))
        if name not in names or not isinstance(arguments, dict | str):
            continue
        args_text = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
        leftover = leftover.replace(span, "", 1)
        if (name, _canonical(args_text)) in answered:
            continue
        calls.append(
            {
                "id": new_id("call"),
                "type": "function",
                "function": {"name": name, "arguments": args_text},
            }
        )
    return calls, leftover.strip()


def _candidates(text: str) -> list[tuple[JSON, str]]:
    found: list[tuple[JSON, str]] = []
    pieces = [(m.group(1), m.group(0)) for m in _TAGGED.finditer(text)]
    pieces += [(m.group(1), m.group(0)) for m in _FENCE.finditer(text)]
    bare = not pieces
    if bare and (start := text.find("{")) >= 0:
        pieces.append((text[start:], text[start:]))
    for body, span in pieces:
        obj, used = _first_object(body.strip())
        if obj is not None:
            # A bare object is removed from the text up to its end; a fenced or tagged
            # one with its fence or tags.
            found.append((obj, body.strip()[:used] if bare else span))
    return found


def _first_object(text: str) -> tuple[JSON | None, int]:
    try:
        obj, end = _DECODER.raw_decode(text)
    except ValueError:
        return None, 0
    return (obj, end) if isinstance(obj, dict) else (None, 0)


def _canonical(arguments: str) -> str:
    try:
        return orjson.dumps(orjson.loads(arguments), option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return arguments


def _answered_calls(request: ChatRequest) -> set[tuple[str, str]]:
    answered_ids = {m.tool_call_id for m in request.messages if m.role == "tool"}
    seen: set[tuple[str, str]] = set()
    for message in request.messages:
        for call in message.tool_calls or []:
            if call.id in answered_ids:
                seen.add((call.function.name, _canonical(call.function.arguments)))
    return seen
