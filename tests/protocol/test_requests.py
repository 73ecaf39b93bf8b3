"""Request schemas and the Mistral dialect."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from egide.protocol import mistral
from egide.protocol.requests import ChatRequest, CompletionRequest, EmbeddingRequest


def test_mistral_names_are_normalised() -> None:
    body = mistral.normalise(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "x"},
            ],
            "random_seed": 9,
            "tool_choice": "any",
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "safe_prompt": True,
        }
    )
    request = ChatRequest.model_validate(body)
    assert request.seed == 9 and request.tool_choice == "required"
    assert request.messages[0].text().startswith(mistral.SAFE_PROMPT)
    assert request.messages[0].text().endswith("Be brief.")


def test_safe_prompt_without_system_message_adds_one() -> None:
    body = mistral.normalise({"messages": [{"role": "user", "content": "x"}], "safe_prompt": True})
    assert body["messages"][0] == {"role": "system", "content": mistral.SAFE_PROMPT}


def test_embeddings_inputs() -> None:
    body = mistral.normalise_embeddings({"model": "e", "inputs": ["a"], "output_dimension": 8})
    request = EmbeddingRequest.model_validate(body)
    assert request.texts() == ["a"] and request.dimensions == 8


def test_text_parts_are_joined() -> None:
    request = ChatRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "bon"}, {"type": "text", "text": "jour"}],
                }
            ],
        }
    )
    assert request.messages[0].text() == "bonjour"


@pytest.mark.parametrize(
    "bad",
    [
        {"messages": []},
        {"messages": [{"role": "user", "content": "x"}], "n": 2},
        {"messages": [{"role": "user", "content": "x"}], "stop": ["a"] * 9},
        {
            "messages": [{"role": "user", "content": "x"}],
            "tool_choice": {"type": "function", "function": {"name": "g"}},
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
        {
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema"},
        },
    ],
)
def test_invalid_chat_requests(bad) -> None:
    with pytest.raises(ValidationError):
        ChatRequest.model_validate({"model": "m", **bad})


def test_one_prompt_per_completion() -> None:
    assert CompletionRequest.model_validate({"model": "m", "prompt": ["a"]}).prompt_text() == "a"
    with pytest.raises(ValidationError, match="exactly one prompt"):
        CompletionRequest.model_validate({"model": "m", "prompt": ["a", "b"]})


@pytest.mark.parametrize(
    ("field", "value", "word"),
    [("logprobs", True, "logprobs"), ("logit_bias", {"1": 2.0}, "logit_bias")],
)
def test_unsupported_sampling_options_are_refused_not_ignored(field, value, word) -> None:
    with pytest.raises(ValidationError, match=word):
        ChatRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], field: value}
        )
    ok = ChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], field: None}
    )
    assert getattr(ok, field) is None
