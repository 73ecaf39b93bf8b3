"""Finding tool calls in model text, and the streaming filter."""

from __future__ import annotations

import orjson

from egide.backends.engine_stream import ToolStreamFilter
from egide.backends.toolcalls import extract_calls, forced_call_schema, may_be_call
from egide.protocol.requests import ChatRequest

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "locate", "parameters": {"type": "object"}}},
]


def _request(messages=None, **extra) -> ChatRequest:
    messages = messages or [{"role": "user", "content": "weather in Paris?"}]
    return ChatRequest.model_validate({"model": "m", "messages": messages, "tools": TOOLS, **extra})


def test_bare_fenced_and_tagged_calls() -> None:
    for text in (
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    ):
        calls, leftover = extract_calls(text, _request())
        assert [c["function"]["name"] for c in calls] == ["get_weather"], text
        assert orjson.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
        assert leftover == ""


def test_two_tagged_calls() -> None:
    text = (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "locate", "arguments": {"unit": "1er RI"}}</tool_call>'
    )
    calls, _ = extract_calls(text, _request())
    assert [c["function"]["name"] for c in calls] == ["get_weather", "locate"]


def test_undeclared_tool_and_plain_text_are_not_calls() -> None:
    assert extract_calls('{"name": "rm_rf", "arguments": {}}', _request())[0] == []
    assert extract_calls("Il fait beau à Paris.", _request())[0] == []


def test_a_call_already_answered_is_not_issued_again() -> None:
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny, 18 C"},
    ]
    text = '{"name": "get_weather", "arguments": {"city":"Paris"}}\nIt is sunny, 18 C.'
    calls, leftover = extract_calls(text, _request(messages))
    assert calls == [] and leftover == "It is sunny, 18 C."


def test_forced_schema_has_one_variant_per_tool() -> None:
    request = _request(tool_choice="required")
    schema = forced_call_schema(request.forced_tools())
    assert [v["properties"]["name"]["const"] for v in schema["oneOf"]] == ["get_weather", "locate"]
    named = _request(tool_choice={"type": "function", "function": {"name": "locate"}})
    assert forced_call_schema(named.forced_tools())["properties"]["name"]["const"] == "locate"


def test_may_be_call() -> None:
    assert may_be_call("  ") is None
    assert may_be_call("<tool") is None
    assert may_be_call("<tool_call>") is True
    assert may_be_call(" {") is True
    assert may_be_call("```") is True
    assert may_be_call("Bonjour") is False


def _chunk(content=None, finish=None, usage=None):
    chunk = {"id": "x", "model": "m", "created": 1, "object": "chat.completion.chunk"}
    if usage:
        chunk["choices"] = []
        chunk["usage"] = usage
    else:
        chunk["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    return chunk


def test_stream_filter_passes_text_through_at_once() -> None:
    f = ToolStreamFilter(_request())
    assert f.feed(_chunk("")) == []
    out = f.feed(_chunk("Il"))
    assert len(out) == 2  # the held empty chunk and this one
    assert f.feed(_chunk(" fait")) == [_chunk(" fait")]
    assert f.feed(_chunk(None, "stop")) == [_chunk(None, "stop")]
    usage = _chunk(usage={"prompt_tokens": 1, "completion_tokens": 2})
    assert f.feed(usage) == []
    assert f.close() == [usage]


def test_stream_filter_turns_a_call_into_tool_call_deltas() -> None:
    f = ToolStreamFilter(_request())
    for piece in ('{"name": "get_', 'weather", "arguments": ', '{"city": "Brest"}}'):
        assert f.feed(_chunk(piece)) == []
    assert f.feed(_chunk(None, "stop")) == []
    out = f.close()
    call = out[0]["choices"][0]["delta"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and call["index"] == 0
    assert out[1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_filter_releases_json_that_is_no_call_as_text() -> None:
    f = ToolStreamFilter(_request())
    f.feed(_chunk('{"answer": 42}'))
    f.feed(_chunk(None, "stop"))
    out = f.close()
    assert out[0]["choices"][0]["delta"]["content"] == '{"answer": 42}'
    assert out[1]["choices"][0]["finish_reason"] == "stop"
