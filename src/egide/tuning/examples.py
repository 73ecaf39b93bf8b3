"""Chat examples → token ids and labels, with the loss on assistant turns only.

Each example is rendered with the base model's own chat template (the one its GGUF
carries, as the embedded engine uses it when serving), so the model is trained on exactly
the prompt shape it will see. A base without a template gets ChatML, which is what
llama.cpp falls back to for such a model. The characters of each trained assistant turn
(``weight`` absent or 1; 0 excludes it) are found by rendering the conversation up to
that turn, and every token whose characters lie in such a turn is trained on; every
other token (system, user, tool, template glue) is masked with -100.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IGNORE = -100
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + (message['content'] or '') + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def read_examples(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """The examples of validated JSON Lines files, in order."""
    for path in paths:
        with Path(path).open("rb") as stream:
            for raw in stream:
                if raw.strip():
                    yield json.loads(raw)


class ChatEncoder:
    """Renders and tokenises examples for one tokenizer (a transformers fast tokenizer)."""

    def __init__(self, tokenizer: Any, max_len: int) -> None:
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.template = tokenizer.chat_template or CHATML

    def render(self, messages: list[dict[str, Any]], tools: Any, generation: bool) -> str:
        text: str = self.tokenizer.apply_chat_template(
            [_clean(m) for m in messages],
            tools=tools or None,
            chat_template=self.template,
            add_generation_prompt=generation,
            tokenize=False,
        )
        return text

    def spans(self, example: dict[str, Any]) -> tuple[str, list[tuple[int, int]]]:
        """The whole rendered text and the character spans of its trained turns."""
        messages, tools = example["messages"], example.get("tools")
        full = self.render(messages, tools, generation=False)
        spans = []
        for i, message in enumerate(messages):
            if message.get("role") != "assistant" or message.get("weight", 1) == 0:
                continue
            before = self.render(messages[:i], tools, generation=True)
            through = self.render(messages[: i + 1], tools, generation=False)
            if full.startswith(through) and through.startswith(before):
                spans.append((len(before), len(through)))
                continue
            # A template that rewrites earlier turns (e.g. drops past reasoning): train on
            # what the last render adds, located in the full text.
            added = through[len(os.path.commonprefix([before, through])) :]  # noqa: RUF071 - text
            start = full.find(added)
            if start >= 0:
                spans.append((start, start + len(added)))
        return full, spans

    def encode(self, example: dict[str, Any]) -> Encoded:
        text, spans = self.spans(example)
        bos = getattr(self.tokenizer, "bos_token", None)
        add_special = not (bos and text.startswith(bos))
        tokens = self.tokenizer(
            text, add_special_tokens=add_special, return_offsets_mapping=True, truncation=False
        )
        ids: list[int] = list(tokens["input_ids"])
        labels = [IGNORE] * len(ids)
        for index, (start, end) in enumerate(tokens["offset_mapping"]):
            if end > start and any(s <= start and end <= e for s, e in spans):
                labels[index] = ids[index]
        return Encoded(ids[: self.max_len], labels[: self.max_len])


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    """A message as chat templates expect it: no training-only keys, string arguments of
    tool calls parsed (templates render them as JSON themselves)."""
    out = {k: v for k, v in message.items() if k != "weight"}
    calls = []
    for call in out.get("tool_calls") or []:
        function = dict(call.get("function", {}))
        if isinstance(function.get("arguments"), str):
            with contextlib.suppress(ValueError):
                function["arguments"] = json.loads(function["arguments"])
        calls.append({**call, "function": function})
    if calls:
        out["tool_calls"] = calls
    return out
