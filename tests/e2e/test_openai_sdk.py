"""The official openai SDK against a real ``egide serve`` on the embedded defaults."""

from __future__ import annotations

import json
import math

import pytest
from openai import OpenAI

pytestmark = pytest.mark.model

CHAT = "qwen2.5-coder-0.5b-instruct"
EMBED = "multilingual-e5-small"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def client(default_server) -> OpenAI:
    return OpenAI(base_url=default_server.api, api_key=default_server.key, max_retries=0)


def test_models_list(client: OpenAI) -> None:
    ids = {m.id for m in client.models.list().data}
    assert {CHAT, EMBED} <= ids
    assert client.models.retrieve(CHAT).id == CHAT


def test_chat_answers_in_french(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Quelle est la capitale de la France ? Un mot."}],
        max_tokens=16,
        temperature=0,
        seed=7,
    )
    assert "paris" in reply.choices[0].message.content.lower()
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.model == CHAT


def test_streamed_chat_with_usage(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "What is the capital of France? One word."}],
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "paris" in text.lower()
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stop_and_max_tokens(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Count from 1 to 20, separated by commas."}],
        max_tokens=5,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens <= 5


def test_tool_call_round_trip(client: OpenAI) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris right now?"}]
    first = client.chat.completions.create(
        model=CHAT, messages=messages, tools=[WEATHER_TOOL], tool_choice="required", temperature=0
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append(
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": '{"temperature_c": 18, "sky": "sunny"}',
        }
    )
    final = client.chat.completions.create(
        model=CHAT, messages=messages, tools=[WEATHER_TOOL], temperature=0, max_tokens=60
    )
    answer = final.choices[0]
    assert answer.finish_reason in ("stop", "length")
    assert not answer.message.tool_calls
    assert answer.message.content


def test_tool_call_streamed(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Weather in Lyon?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    calls = [tc for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"
    assert isinstance(json.loads(calls[0].function.arguments), dict)


def test_json_schema_output_parses(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "unit": {"type": "string"},
            "vehicles": {"type": "integer"},
            "ready": {"type": "boolean"},
        },
        "required": ["unit", "vehicles", "ready"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Describe a logistics unit with 12 ready trucks."}],
        response_format={"type": "json_schema", "json_schema": {"name": "unit", "schema": schema}},
        max_tokens=120,
        temperature=0.7,
    )
    data = json.loads(reply.choices[0].message.content)
    assert set(data) == {"unit", "vehicles", "ready"}
    assert isinstance(data["vehicles"], int) and isinstance(data["ready"], bool)


def test_json_object_output_parses(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Give a JSON object with a field 'city'."}],
        response_format={"type": "json_object"},
        max_tokens=60,
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_completions(client: OpenAI) -> None:
    reply = client.completions.create(
        model=CHAT, prompt="The capital of France is", max_tokens=4, temperature=0
    )
    assert "paris" in reply.choices[0].text.lower()


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_embeddings_paraphrase_beats_unrelated(client: OpenAI) -> None:
    texts = [
        "Le convoi logistique arrivera à la base demain matin.",
        "The logistics convoy will reach the base tomorrow morning.",
        "Cette recette de gâteau au chocolat demande trois œufs.",
    ]
    vectors = [d.embedding for d in client.embeddings.create(model=EMBED, input=texts).data]
    assert len(vectors) == 3 and len(vectors[0]) == 384
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[0], vectors[2]) + 0.05
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[1], vectors[2]) + 0.05


def test_embeddings_base64_matches_float(client: OpenAI) -> None:
    import base64

    import numpy as np

    as_float = client.embeddings.create(model=EMBED, input="bonjour", encoding_format="float")
    raw = client.with_options().embeddings.with_raw_response.create(
        model=EMBED, input="bonjour", encoding_format="base64"
    )
    encoded = json.loads(raw.text)["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert np.allclose(decoded, as_float.data[0].embedding, atol=1e-6)
