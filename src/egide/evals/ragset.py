"""The shipped FR/EN evaluation set for knowledge bases (``egide/evals/data/rag``).

The set is a small corpus of fictional defence documents (logistics, maintenance,
intelligence-style reports and administrative notes, in French and English, as Markdown,
HTML and plain text), each with a classification label, and a list of questions:

- ``manifest.json``: ``{"documents": [{"file", "label", "lang", "topic", "title"}, ...]}``.
  ``label`` is a marking of the French scheme (``"DR"``, ``"S//TIGRE//SF"``,
  ``"DR//REL TO FRA, DEU"``); documents at DR and above carry their banner at the top and
  the bottom, and may carry portion markings (``(DR)``) that their label dominates.
- ``questions.jsonl``: one question a line, ``{"id", "lang", "question", "answer",
  "relevant": [{"file", "passage"}]}``. ``passage`` is a verbatim extract of the document
  (of its visible text for HTML) that contains ``answer`` as written in the source.
  Unanswerable questions have ``"answer": null`` and ``"relevant": []``. A question may be
  asked in the other language than the document that answers it.

:func:`load_rag_set` reads it through :mod:`importlib.resources`, so it works from a source
checkout and from an installed wheel alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from egide.errors import ConfigError

_PACKAGE = "egide.evals"
_SET_DIR = ("data", "rag")
LANGS = frozenset({"fr", "en"})


@dataclass(frozen=True)
class SetDocument:
    """One document of the set."""

    file: str  # path relative to the set directory, e.g. "docs/fr-logistique-carburant-brevane.md"
    path: Path  # absolute path
    label: str  # the marking text from the manifest
    lang: str
    topic: str
    title: str

    @property
    def format(self) -> str:
        """``"md"``, ``"html"`` or ``"txt"``."""
        return self.path.suffix.lstrip(".")

    def read_text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Passage:
    """A verbatim extract of a document that answers a question."""

    file: str
    passage: str


@dataclass(frozen=True)
class SetQuestion:
    """A question, its short exact answer (None if the set cannot answer it) and evidence."""

    id: str
    lang: str
    question: str
    answer: str | None
    relevant: tuple[Passage, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.relevant)


@dataclass(frozen=True)
class RagSet:
    """The documents and questions of the set."""

    directory: Path
    documents: tuple[SetDocument, ...]
    questions: tuple[SetQuestion, ...]

    def document(self, file: str) -> SetDocument:
        """The document whose manifest ``file`` is ``file``; raises ``KeyError`` if none."""
        for doc in self.documents:
            if doc.file == file:
                return doc
        raise KeyError(f"no document {file!r} in the set at {self.directory}")


def _str(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value


def _document(directory: Path, entry: Any, index: int) -> SetDocument:
    where = f"manifest.json document #{index}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with file, label, lang, topic, title")
    file = _str(entry, "file", where)
    lang = _str(entry, "lang", where)
    if lang not in LANGS:
        raise ConfigError(f"{where}: lang must be 'fr' or 'en', got {lang!r}")
    return SetDocument(
        file=file,
        path=directory / file,
        label=_str(entry, "label", where),
        lang=lang,
        topic=_str(entry, "topic", where),
        title=_str(entry, "title", where),
    )


def _question(entry: Any, number: int) -> SetQuestion:
    where = f"questions.jsonl line {number}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a JSON object")
    answer = entry.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise ConfigError(f"{where}: answer must be a string or null")
    relevant = entry.get("relevant", [])
    if not isinstance(relevant, list):
        raise ConfigError(f"{where}: relevant must be a list of {{file, passage}}")
    passages = tuple(
        Passage(file=_str(item, "file", where), passage=_str(item, "passage", where))
        for item in relevant
        if isinstance(item, dict)
    )
    if len(passages) != len(relevant):
        raise ConfigError(f"{where}: every relevant item must be an object {{file, passage}}")
    return SetQuestion(
        id=_str(entry, "id", where),
        lang=_str(entry, "lang", where),
        question=_str(entry, "question", where),
        answer=answer,
        relevant=passages,
    )


def load_rag_set() -> RagSet:
    """Read the set shipped in the package (manifest, documents' paths, questions)."""
    root = resources.files(_PACKAGE).joinpath(*_SET_DIR)
    directory = Path(str(root))
    if not directory.is_dir():
        raise ConfigError(f"the evaluation set is missing: {directory} is not a directory")
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    documents = tuple(
        _document(directory, entry, i) for i, entry in enumerate(manifest.get("documents", []))
    )
    questions = []
    lines = (directory / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if line.strip():
            questions.append(_question(json.loads(line), number))
    return RagSet(directory=directory, documents=documents, questions=tuple(questions))
