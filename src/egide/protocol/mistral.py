"""Mistral's request dialect, normalised to the OpenAI canonical form.

The official ``mistralai`` SDK sends ``random_seed`` for the seed, ``tool_choice: "any"``
for "required", ``safe_prompt`` to prepend Mistral's guardrail system prompt, and tool-call
arguments as objects. Everything here operates on the decoded JSON body, before validation.
"""

from __future__ import annotations

from typing import Any

# Mistral's documented guardrail prompt, prepended when ``safe_prompt`` is true.
SAFE_PROMPT = (
    "Always assist with care, respect, and truth. Respond with utmost utility yet securely. "
    "Avoid harmful, unethical, prejudiced, or negative content. "
    "Ensure replies promote fairness and positivity."
)


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Return ``body`` with Mistral names mapped to OpenAI ones (in place, and returned)."""
    if "random_seed" in body:
        seed = body.pop("random_seed")
        body.setdefault("seed", seed)
    choice = body.get("tool_choice")
    if choice == "any":
        body["tool_choice"] = "required"
    if body.pop("safe_prompt", False) and isinstance(body.get("messages"), list):
        body["messages"] = _with_safe_prompt(body["messages"])
    return body


def _with_safe_prompt(messages: list[Any]) -> list[Any]:
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") == "system":
        content = first.get("content")
        if isinstance(content, str):
            return [{**first, "content": f"{SAFE_PROMPT}\n\n{content}"}, *messages[1:]]
    return [{"role": "system", "content": SAFE_PROMPT}, *messages]


def normalise_embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Mistral's embeddings request names the texts ``inputs``; OpenAI's ``input``."""
    if "inputs" in body and "input" not in body:
        body["input"] = body.pop("inputs")
    if body.get("output_dtype") not in (None, "float"):
        body["encoding_format"] = body.pop("output_dtype")  # refused with a clear message
    body.pop("output_dtype", None)
    if "output_dimension" in body:
        body["dimensions"] = body.pop("output_dimension")
    return body
