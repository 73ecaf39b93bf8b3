"""Validation of chat fine-tuning data (JSON Lines), before any job starts.

Each line is one example in Mistral's or OpenAI's chat fine-tuning format::

    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "...", "weight": 1}],
     "tools": [{"type": "function", "function": {"name": "...", "parameters": {...}}}]}

Errors are reported with their line number and say how to fix the line: bad JSON, no
``messages``, an unknown role, an empty assistant turn, an assistant turn that is never
trained on, a tool call to a tool the line does not declare, a tool answer without the
call it answers, a sequence longer than the model's context. Statistics count examples,
trained assistant turns and tokens. :func:`split` makes a deterministic train/validation
split when no validation file is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

ROLES = ("system", "user", "assistant", "tool")
CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class DatasetReport:
    examples: int = 0
    trained_turns: int = 0
    tokens: int = 0
    longest: int = 0
    errors: list[LineError] = field(default_factory=list)
    more_errors: int = 0

    @property
    def valid(self) -> bool:
        return not self.errors and self.examples > 0

    def summary(self) -> str:
        if self.valid:
            return f"{self.examples} examples, {self.tokens} tokens"
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = len(self.errors) - 5 + self.more_errors
        tail = f" (and {more} more)" if more > 0 else ""
        if not self.errors:
            return "the file holds no example: one JSON object per line, with 'messages'"
        return shown + tail


def render(example: dict[str, Any]) -> str:
    """The text whose tokens are counted against the context: every message and tool."""
    parts = [orjson.dumps(example.get("tools") or []).decode()]
    for message in example["messages"]:
        parts.append(f"{message.get('role')}: {message.get('content') or ''}")
        if message.get("tool_calls"):
            parts.append(orjson.dumps(message["tool_calls"]).decode())
    return "\n".join(parts)


def _declared_tools(example: dict[str, Any]) -> set[str] | str:
    tools = example.get("tools")
    if tools is None:
        return set()
    if not isinstance(tools, list):
        return "'tools' must be a list of function tools"
    names = set()
    for tool in tools:
        name = (tool or {}).get("function", {}).get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not name:
            return "each tool needs {'type': 'function', 'function': {'name': ...}}"
        names.add(name)
    return names


def check_example(example: Any) -> tuple[str | None, int]:
    """(the first problem of one example or None, its number of trained assistant turns)."""
    if not isinstance(example, dict):
        return "each line must be a JSON object with 'messages'", 0
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list of {role, content} objects", 0
    tools = _declared_tools(example)
    if isinstance(tools, str):
        return tools, 0
    calls: set[str] = set()
    trained = 0
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            return f"{where} must be an object with 'role' and 'content'", 0
        role = message.get("role")
        if role not in ROLES:
            return f"{where} has role {role!r}; use one of {', '.join(ROLES)}", 0
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            return f"{where}.content must be a string", 0
        weight = message.get("weight", 1)
        if "weight" in message and (role != "assistant" or weight not in (0, 1)):
            return f"{where}.weight is only for assistant messages, and is 0 or 1", 0
        if role == "assistant":
            tool_calls = message.get("tool_calls") or []
            if not (content or "").strip() and not tool_calls:
                return f"{where} is an empty assistant turn: give it content or tool_calls", 0
            for call in tool_calls:
                function = call.get("function", {}) if isinstance(call, dict) else {}
                name = function.get("name")
                if name not in tools:
                    known = ", ".join(sorted(tools)) or "none"
                    return f"{where} calls unknown tool {name!r}; declared tools: {known}", 0
                if isinstance(call, dict) and call.get("id"):
                    calls.add(str(call["id"]))
            trained += 1 if weight else 0
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id or (calls and call_id not in calls):
                return f"{where} answers no earlier tool call: set its 'tool_call_id'", 0
        elif not (content or "").strip():
            return f"{where} ({role}) has no content", 0
    if trained == 0:
        return "no assistant turn to learn from (every one has weight 0, or there is none)", 0
    return None, trained


def validate(
    data: bytes, count_tokens: CountTokens, context_length: int, max_errors: int = 100
) -> DatasetReport:
    """Check every line of a JSON Lines training file (see the module docstring)."""
    report = DatasetReport()

    def fail(line: int, message: str) -> None:
        if len(report.errors) < max_errors:
            report.errors.append(LineError(line, message))
        else:
            report.more_errors += 1

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        fail(1, "the file is not UTF-8 text")
        return report
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            example = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            fail(number, f"not valid JSON ({exc}); write one JSON object per line")
            continue
        problem, trained = check_example(example)
        if problem is not None:
            fail(number, problem)
            continue
        tokens = count_tokens(render(example))
        if tokens > context_length:
            fail(
                number,
                f"the example is {tokens} tokens, over the model's context of {context_length}: "
                "shorten it or split it into several examples",
            )
            continue
        report.examples += 1
        report.trained_turns += trained
        report.tokens += tokens
        report.longest = max(report.longest, tokens)
    return report


def split(data: bytes, validation_fraction: float, seed: str) -> tuple[bytes, bytes]:
    """A deterministic split of the non-empty lines: a line goes to validation when its
    keyed hash falls under the fraction (stable whatever the order of the file)."""
    train: list[str] = []
    validation: list[str] = []
    for line in data.decode("utf-8-sig").splitlines():
        if not line.strip():
            continue
        digest = hashlib.sha256(f"{seed}\0{line}".encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") / 2**64
        (validation if bucket < validation_fraction else train).append(line)
    if not validation and len(train) > 1:
        validation.append(train.pop())
    return "\n".join(train).encode() + b"\n", "\n".join(validation).encode() + b"\n"
