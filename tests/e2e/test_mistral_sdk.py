"""The official mistralai SDK against a real ``egide serve`` on the embedded defaults."""

from __future__ import annotations

import json
import math

import pytest
from mistralai.client import Mistral

pytestmark = pytest.mark.model

CHAT = "qwen2.5-coder-0.5b-instruct"
EMBED = "multilingual-e5-small"
TOOL = {
    "type": "function",
    "function": {
        "name": "vehicle_status",
        "description": "Maintenance status of a vehicle by its registration",
        "parameters": {
            "type": "object",
            "properties": {"registration": {"type": "string"}},
            "required": ["registration"],
        },
    },
}


@pytest.fixture(scope="module")
def client(default_server):
    with Mistral(api_key=default_server.key, server_url=default_server.url) as sdk:
        yield sdk


def test_models_list(client) -> None:
    ids = {m.id for m in client.models.list().data}
    assert {CHAT, EMBED} <= ids


def test_chat_with_random_seed_and_safe_prompt(client) -> None:
    reply = client.chat.complete(
        model=CHAT,
        messages=[{"role": "user", "content": "Quelle est la capitale de la France ? Un mot."}],
        max_tokens=16,
        temperature=0,
        random_seed=3,
        safe_prompt=True,
    )
    assert "paris" in reply.choices[0].message.content.lower()
    assert reply.usage.prompt_tokens > 40  # the guardrail prompt was prepended


def test_streamed_chat(client) -> None:
    events = list(
        client.chat.stream(
            model=CHAT,
            messages=[{"role": "user", "content": "What is the capital of France? One word."}],
            max_tokens=16,
            temperature=0,
        )
    )
    text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert "paris" in text.lower()


def test_tool_choice_any_round_trip(client) -> None:
    messages = [{"role": "user", "content": "Is vehicle AB-123-CD ready for the convoy?"}]
    first = client.chat.complete(
        model=CHAT, messages=messages, tools=[TOOL], tool_choice="any", temperature=0
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "vehicle_status"
    args = call.function.arguments
    assert "registration" in (args if isinstance(args, dict) else json.loads(args))
    messages.append(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": args},
                }
            ],
        }
    )
    messages.append(
        {
            "role": "tool",
            "tool_call_id": call.id,
            "name": "vehicle_status",
            "content": '{"status": "ready", "last_service": "2026-10-02"}',
        }
    )
    final = client.chat.complete(
        model=CHAT, messages=messages, tools=[TOOL], max_tokens=60, temperature=0, random_seed=1
    )
    assert final.choices[0].message.content
    assert not final.choices[0].message.tool_calls


def test_json_schema_output_parses(client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    reply = client.chat.complete(
        model=CHAT,
        messages=[
            {"role": "user", "content": "Give the largest city of France and its population."}
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
        max_tokens=80,
    )
    data = json.loads(reply.choices[0].message.content)
    assert isinstance(data["city"], str) and isinstance(data["population"], int)


def test_embeddings(client) -> None:
    result = client.embeddings.create(
        model=EMBED,
        inputs=[
            "Le moteur du véhicule doit être révisé.",
            "The vehicle's engine must be serviced.",
            "Les élections municipales ont lieu en mars.",
        ],
    )
    a, b, c = (d.embedding for d in result.data)

    def cos(x, y):
        return sum(i * j for i, j in zip(x, y, strict=True)) / (
            math.sqrt(sum(i * i for i in x)) * math.sqrt(sum(j * j for j in y))
        )

    assert cos(a, b) > cos(a, c) + 0.05
