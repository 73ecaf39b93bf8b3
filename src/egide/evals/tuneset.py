"""The shipped FR/EN fine-tuning evaluation set (``egide/evals/data/tuning``).

It shows that fine-tuning teaches a model facts it cannot know, without making it forget
what it knew. Everything about the unit is invented, so a base model cannot answer:

- ``facts.json``: ``{"unit": {...}, "facts": [{"id", "subject_fr", "subject_en", "answer"}]}``
  about a fictional unit (the 41e régiment de transmissions de Castelvire). Each answer is
  short, unguessable and written the same in French and English (``"Héron 7"``).
- ``train.jsonl``: chat fine-tuning lines (``{"messages": [user, assistant]}``): several FR
  and EN phrasings a fact, each answered by a sentence holding the exact answer, plus a few
  ordinary questions so that general behaviour is kept.
- ``validation.jsonl``: the same chat lines for one more FR and EN phrasing a fact, for
  a job's validation loss (so that no training line is split off for it).
- ``heldout.jsonl``: one FR and one EN paraphrase a fact, never asked in training:
  ``{"id", "fact", "lang", "question", "answer"}``.
- ``general.jsonl``: general-knowledge questions a small instruct model answers before
  tuning (and should still answer after): ``{"id", "lang", "question", "answer", "aliases"}``.

:func:`is_correct` checks that the expected answer (or an alias) appears in a model's
reply as a whole sequence of words, ignoring case, accents and punctuation.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from egide.errors import ConfigError

_PACKAGE = "egide.evals"
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d"})
_TOKEN = re.compile(r"[^\W\d_]+|\d+")  # runs of letters or of digits: "KX58" -> kx, 58


@dataclass(frozen=True)
class Question:
    """A question with its short exact answer and other accepted spellings."""

    id: str
    lang: str
    question: str
    answer: str
    aliases: tuple[str, ...] = ()


def _file(name: str) -> Traversable:
    path = resources.files(_PACKAGE) / "data" / "tuning" / name
    if not path.is_file():
        raise ConfigError(f"the fine-tuning evaluation set is missing {name}: reinstall egide")
    return path


def load_training_lines() -> bytes:
    """The bytes of ``train.jsonl``, ready to upload as a fine-tuning file."""
    return _file("train.jsonl").read_bytes()


def load_validation_lines() -> bytes:
    """The bytes of ``validation.jsonl``: more phrasings of the facts, in neither the
    training file nor the held-out set, to upload as a job's validation file."""
    return _file("validation.jsonl").read_bytes()


def load_rehearsal_prompts() -> list[str]:
    """General prompts (coding, definitions, arithmetic, writing; FR and EN) whose answers
    by the base model itself are mixed into a training set so that tuning keeps what the
    model could already do (rehearsal). None of them is a question of ``general.jsonl``."""
    lines = _file("rehearsal.jsonl").read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["prompt"]) for line in lines if line.strip()]


def _questions(name: str) -> list[Question]:
    questions = []
    lines = _file(name).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        entry = json.loads(line)
        try:
            questions.append(
                Question(
                    id=str(entry["id"]),
                    lang=str(entry["lang"]),
                    question=str(entry["question"]),
                    answer=str(entry["answer"]),
                    aliases=tuple(str(a) for a in entry.get("aliases", ())),
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{name} line {number}: needs id, lang, question, answer") from exc
    return questions


def load_heldout() -> list[Question]:
    """The held-out paraphrases of the facts (answerable only after tuning)."""
    return _questions("heldout.jsonl")


def load_general() -> list[Question]:
    """The general-knowledge questions (answerable before and after tuning)."""
    return _questions("general.jsonl")


def tokens(text: str) -> list[str]:
    """Words of ``text``: casefolded, without accents, letters and digits split apart."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _TOKEN.findall(plain)


def _contains(words: list[str], needle: list[str]) -> bool:
    size = len(needle)
    return size > 0 and any(words[i : i + size] == needle for i in range(len(words) - size + 1))


def is_correct(answer_text: str, question: Question) -> bool:
    """Whether the reply holds the answer or an alias as a whole sequence of words."""
    words = tokens(answer_text)
    return any(_contains(words, tokens(e)) for e in (question.answer, *question.aliases))


def accuracy(answers: dict[str, str], questions: list[Question]) -> float:
    """Share of ``questions`` whose reply in ``answers`` (by question id) is correct.

    A question without a reply counts as wrong; no question gives 0.0.
    """
    if not questions:
        return 0.0
    right = sum(is_correct(answers.get(q.id, ""), q) for q in questions)
    return right / len(questions)
