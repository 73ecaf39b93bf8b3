"""The shipped fine-tuning evaluation set: facts, training lines, held-out paraphrases,
general questions, and the exact-answer scorer."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import pytest

from egide.evals.tuneset import (
    Question,
    accuracy,
    is_correct,
    load_general,
    load_heldout,
    load_rehearsal_prompts,
    load_training_lines,
    load_validation_lines,
    tokens,
)

TUNING = resources.files("egide.evals") / "data" / "tuning"


def facts() -> dict[str, str]:
    data = json.loads((TUNING / "facts.json").read_text(encoding="utf-8"))
    return {fact["id"]: fact["answer"] for fact in data["facts"]}


def chat_pairs(raw: bytes) -> list[tuple[str, str]]:
    """(user, assistant) of each line of a shipped chat file."""
    examples = [json.loads(line)["messages"] for line in raw.decode().splitlines() if line]
    return [(m[0]["content"], m[1]["content"]) for m in examples]


def pairs() -> list[tuple[str, str]]:
    return chat_pairs(load_training_lines())


def q(answer: str, *aliases: str) -> Question:
    return Question(id="x", lang="fr", question="?", answer=answer, aliases=aliases)


def test_facts_are_unique_short_and_complete() -> None:
    data = json.loads((TUNING / "facts.json").read_text(encoding="utf-8"))
    ids = [fact["id"] for fact in data["facts"]]
    assert len(ids) >= 25
    assert len(ids) == len(set(ids))
    answers = [fact["answer"] for fact in data["facts"]]
    assert len({a.casefold() for a in answers}) == len(answers)
    for fact in data["facts"]:
        assert fact["subject_fr"] and fact["subject_en"], fact["id"]
        assert 0 < len(fact["answer"].split()) <= 4, fact["id"]


@pytest.mark.parametrize("load", [load_training_lines, load_validation_lines])
def test_every_training_line_is_a_user_then_assistant_chat(load) -> None:
    lines = load().decode("utf-8").splitlines()
    assert lines
    for number, line in enumerate(lines, start=1):
        example = json.loads(line)
        roles = [m["role"] for m in example["messages"]]
        assert roles == ["user", "assistant"], number
        for message in example["messages"]:
            assert isinstance(message["content"], str) and message["content"].strip(), number
            assert len(message["content"].split()) < 80, number


def names_unit(user: str) -> bool:
    """Every fact question names the unit ("41e RT", "the 41st", "Castelvire", ...)."""
    text = user.casefold()
    return "41" in text or "castelvire" in text or "transmissions" in text


FRENCH = re.compile(r"\b(le|la|les|du|des|quel|quelle|quels|est|je|qui|au|aux|pour|une|dans)\b")


def language(user: str) -> str:
    text = user.casefold()
    if "41st" in text:
        return "en"
    french = "41e" in text or text.rstrip().endswith(" ?") or FRENCH.search(text)
    return "fr" if french else "en"


def test_each_fact_is_trained_in_both_languages_with_its_exact_answer() -> None:
    known = facts()
    per_fact: Counter[tuple[str, str]] = Counter()
    plain = 0
    for user, reply in pairs():
        exact = {f for f, answer in known.items() if answer in reply}
        loose = {f for f, answer in known.items() if is_correct(reply, q(answer))}
        # A reply that names a fact spells its answer exactly (no typo, no missing accent).
        assert exact == loose, (user, reply)
        assert len(exact) <= 1, (user, reply)
        if exact:
            assert names_unit(user), user
            per_fact[(exact.pop(), language(user))] += 1
        else:
            assert not names_unit(user), (user, reply)  # a fact question, answered wrongly
            plain += 1
    for fact_id in known:
        assert per_fact[(fact_id, "fr")] >= 12, fact_id
        assert per_fact[(fact_id, "en")] >= 12, fact_id
    assert plain >= 10  # ordinary questions that keep general behaviour


def similarity(a: str, b: str) -> float:
    """Shared words over all words of two questions (accents and case aside)."""
    left, right = set(tokens(a)), set(tokens(b))
    return len(left & right) / len(left | right)


def validation() -> list[tuple[str, str]]:
    return chat_pairs(load_validation_lines())


def test_validation_lines_phrase_every_fact_anew_in_both_languages() -> None:
    known = facts()
    asked = {u.casefold().strip() for u, _ in pairs()}
    per_fact: Counter[tuple[str, str]] = Counter()
    for user, reply in validation():
        assert user.casefold().strip() not in asked, user
        (fact,) = [f for f, answer in known.items() if answer in reply]
        per_fact[(fact, language(user))] += 1
    assert per_fact == Counter({(f, lang): 1 for f in known for lang in ("fr", "en")})


def test_no_trained_or_validation_question_is_a_near_copy_of_a_heldout_one() -> None:
    """A held-out question shares under 70% of its words with every question of the
    training and validation files: it tests a new wording, not a recalled one."""
    seen = [u for u, _ in (*pairs(), *validation())]
    for question in load_heldout():
        closest = max(seen, key=lambda u: similarity(u, question.question))
        assert similarity(closest, question.question) < 0.7, (question.id, closest)


def test_rehearsal_prompts_are_bilingual_unique_and_not_evaluation_questions() -> None:
    prompts = load_rehearsal_prompts()
    assert len(prompts) >= 150
    assert len({p.casefold() for p in prompts}) == len(prompts)
    assert Counter(language(p) for p in prompts)["fr"] >= len(prompts) // 3
    evaluated = {frozenset(tokens(q.question)) for q in (*load_general(), *load_heldout())}
    for prompt in prompts:
        assert not names_unit(prompt), prompt
        assert frozenset(tokens(prompt)) not in evaluated, prompt


def test_heldout_questions_are_new_paraphrases_of_known_facts() -> None:
    known = facts()
    asked = {u.casefold().strip() for u, _ in pairs()}
    heldout = load_heldout()
    raw = [json.loads(line) for line in (TUNING / "heldout.jsonl").read_text().splitlines()]
    assert len(heldout) == len(raw) == 2 * len(known)
    for entry, question in zip(raw, heldout, strict=True):
        assert entry["fact"] in known, entry["id"]
        assert question.answer == known[entry["fact"]], entry["id"]
        assert question.lang in {"fr", "en"}
        assert question.question.casefold().strip() not in asked, entry["id"]
    assert Counter((e["fact"], e["lang"]) for e in raw) == Counter(
        {(f, lang): 1 for f in known for lang in ("fr", "en")}
    )


def test_general_questions_are_bilingual_and_not_trained() -> None:
    general = load_general()
    assert len(general) >= 30
    assert len({g.id for g in general}) == len(general)
    assert Counter(g.lang for g in general) == {"fr": len(general) // 2, "en": len(general) // 2}
    asked = {u.casefold().strip() for u, _ in pairs()}
    for question in general:
        assert question.question.casefold().strip() not in asked, question.id
        assert len(question.answer) > 1, question.id
    assert any(g.aliases for g in general)


def test_is_correct_matches_whole_words_only() -> None:
    assert is_correct("C'est Héron 7.", q("Héron 7"))
    assert not is_correct("Héron 77", q("Héron 7"))
    assert not is_correct("Héron", q("Héron 7"))
    assert not is_correct("156", q("56"))
    assert not is_correct("565", q("56"))
    assert is_correct("7 fois 8 font 56.", q("56"))
    assert not is_correct("", q("56"))


@pytest.mark.parametrize(
    "reply",
    ["heron 7", "HÉRON 7", "Indicatif : HERON-7 !", "« Héron  7 »", "l'indicatif est héron\n7"],
)
def test_is_correct_ignores_case_accents_and_punctuation(reply: str) -> None:
    assert is_correct(reply, q("Héron 7"))


def test_is_correct_accepts_aliases_and_codes_written_together() -> None:
    assert is_correct("The capital is Moscow.", q("Moscou", "Moscow"))
    assert not is_correct("The capital is Minsk.", q("Moscou", "Moscow"))
    assert is_correct("C'est le KX58.", q("KX-58"))
    assert is_correct("47,250 MHz", q("47.250 MHz"))
    assert not is_correct("47.25 MHz", q("47.250 MHz"))


def test_accuracy_counts_missing_replies_as_wrong() -> None:
    questions = [
        Question(id="a", lang="en", question="?", answer="56", aliases=()),
        Question(id="b", lang="en", question="?", answer="Paris", aliases=()),
        Question(id="c", lang="en", question="?", answer="Rome", aliases=()),
        Question(id="d", lang="en", question="?", answer="Berlin", aliases=()),
    ]
    answers = {"a": "It is 56.", "b": "Lyon", "c": "rome"}
    assert accuracy(answers, questions) == pytest.approx(0.5)
    assert accuracy({}, questions) == 0.0
    assert accuracy(answers, []) == 0.0
