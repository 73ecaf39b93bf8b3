"""Validation of chat fine-tuning JSON Lines: line-numbered errors, statistics, split."""

from __future__ import annotations

import json

from egide.tuning.datasets import render, split, validate


def words(text: str) -> int:
    return len(text.split())


def line(messages, **extra) -> str:
    return json.dumps({"messages": messages, **extra}, ensure_ascii=False)


OK = line(
    [
        {"role": "system", "content": "Tu es l'assistant du 12e escadron."},
        {"role": "user", "content": "Indicatif du chef de peloton ?"},
        {"role": "assistant", "content": "Aigle 6."},
    ]
)
TOOLS = [{"type": "function", "function": {"name": "stock", "parameters": {}}}]
WITH_TOOL = line(
    [
        {"role": "user", "content": "Stock de gazole ?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "function": {"name": "stock", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "40 m3"},
        {"role": "assistant", "content": "40 m3 au dépôt."},
        {"role": "assistant", "content": "Autre chose ?", "weight": 0},
    ],
    tools=TOOLS,
)


def test_a_good_file_gives_statistics() -> None:
    data = "\n".join([OK, "", WITH_TOOL]).encode()
    report = validate(data, words, context_length=200)
    assert report.valid, report.summary()
    assert report.examples == 2 and report.trained_turns == 3
    expected = sum(words(render(json.loads(x))) for x in (OK, WITH_TOOL))
    assert report.tokens == expected and report.longest < expected
    assert report.summary().startswith("2 examples")


def test_every_error_is_named_with_its_line() -> None:
    bad = [
        OK,
        "{not json",
        line([{"role": "robot", "content": "x"}]),
        line([{"role": "user", "content": "x"}, {"role": "assistant", "content": "  "}]),
        line(
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0}]
        ),
        line(
            [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [{"function": {"name": "fire"}}]},
            ],
            tools=TOOLS,
        ),
        line([{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}]),
        line([{"role": "user", "content": "mot " * 300}, {"role": "assistant", "content": "z"}]),
        json.dumps({"prompt": "x"}),
        json.dumps([1, 2]),
    ]
    report = validate("\n".join(bad).encode(), words, context_length=200)
    assert not report.valid
    by_line = {e.line: e.message for e in report.errors}
    assert 1 not in by_line
    assert "not valid JSON" in by_line[2]
    assert "'robot'" in by_line[3] and "system, user, assistant, tool" in by_line[3]
    assert "empty assistant turn" in by_line[4]
    assert "no assistant turn to learn from" in by_line[5]
    assert "unknown tool 'fire'" in by_line[6] and "stock" in by_line[6]
    assert "tool_call_id" in by_line[7]
    assert "over the model's context of 200" in by_line[8]
    assert "'messages'" in by_line[9] and "JSON object" in by_line[10]
    assert report.summary().startswith("line 2:") and "(and 4 more)" in report.summary()


def test_not_utf8_and_empty_files() -> None:
    assert "UTF-8" in validate(b"\xff\xfe\x00", words, 100).summary()
    empty = validate(b"\n\n", words, 100)
    assert not empty.valid and "no example" in empty.summary()


def test_split_is_deterministic_and_complete() -> None:
    lines = [
        line([{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}])
        for i in range(200)
    ]
    data = "\n".join(lines).encode()
    train, val = split(data, 0.1, "job-1")
    assert (train, val) == split(data, 0.1, "job-1")
    got = [x for x in (train + val).decode().splitlines() if x]
    assert sorted(got) == sorted(lines)
    assert 5 <= len([x for x in val.decode().splitlines() if x]) <= 40
    one_val = split("\n".join(lines[:3]).encode(), 0.0, "s")[1]
    assert len([x for x in one_val.decode().splitlines() if x]) == 1
