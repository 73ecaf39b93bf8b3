"""The shipped FR/EN knowledge-base evaluation set: manifest, labels, markings, questions."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from egide.evals.ragset import RagSet, SetDocument, load_rag_set
from egide.security.labels import Label
from egide.security.levels import scheme_by_name
from egide.security.markings import parse_marking
from egide.security.spillage import scan

FRENCH = scheme_by_name("fr")
FORMATS = {"md", "html", "txt"}
TOPICS = {"logistics", "maintenance", "intelligence", "administration"}


@pytest.fixture(scope="module")
def rag_set() -> RagSet:
    return load_rag_set()


def visible_text(doc: SetDocument) -> str:
    raw = doc.read_text()
    if doc.format == "html":
        return BeautifulSoup(raw, "html.parser").get_text("\n")
    return raw


def label_of(doc: SetDocument) -> Label:
    return parse_marking(doc.label, FRENCH)


def test_manifest_lists_every_file_once(rag_set: RagSet) -> None:
    files = [doc.file for doc in rag_set.documents]
    assert len(files) == len(set(files))
    on_disk = {
        p.relative_to(rag_set.directory).as_posix()
        for p in (rag_set.directory / "docs").iterdir()
        if p.is_file()
    }
    assert set(files) == on_disk
    for doc in rag_set.documents:
        assert doc.path.is_file(), doc.file
        assert doc.path == rag_set.directory / doc.file
        assert rag_set.document(doc.file) is doc
    with pytest.raises(KeyError):
        rag_set.document("docs/absent.md")


def test_manifest_fields(rag_set: RagSet) -> None:
    for doc in rag_set.documents:
        assert doc.lang in {"fr", "en"}, doc.file
        assert doc.format in FORMATS, doc.file
        assert doc.topic in TOPICS, doc.file
        assert doc.title.strip(), doc.file
        assert doc.file.startswith(f"docs/{doc.lang}-"), doc.file
        label_of(doc)  # parses, or raises MarkingError


def test_corpus_shape(rag_set: RagSet) -> None:
    docs = rag_set.documents
    assert 24 <= len(docs) <= 30
    langs = Counter(doc.lang for doc in docs)
    assert abs(langs["fr"] - langs["en"]) <= 4
    assert {doc.format for doc in docs} == FORMATS
    assert {doc.topic for doc in docs} == TOPICS
    labels = [label_of(doc) for doc in docs]
    assert {lb.level.code for lb in labels} == {"NP", "DR", "S"}
    assert any(lb.compartments for lb in labels)
    assert any(lb.releasable_to == frozenset({"FRA"}) for lb in labels)
    assert any(lb.releasable_to == frozenset({"FRA", "DEU"}) for lb in labels)
    for doc in docs:
        words = len(visible_text(doc).split())
        assert 300 <= words <= 1200, (doc.file, words)


def test_html_documents_have_headings(rag_set: RagSet) -> None:
    for doc in rag_set.documents:
        if doc.format == "html":
            soup = BeautifulSoup(doc.read_text(), "html.parser")
            assert soup.find("h1") is not None, doc.file
            assert soup.find(["h2", "h3"]) is not None, doc.file


def test_every_marking_in_a_document_is_dominated_by_its_label(rag_set: RagSet) -> None:
    for doc in rag_set.documents:
        label = label_of(doc)
        found = scan(visible_text(doc), FRENCH)
        for match in found:
            assert label.dominates(match.label), (doc.file, match.line, match.column)
        if label.level.code == "NP":
            assert found == [], (doc.file, [(m.line, m.column) for m in found])
        else:
            banners = [m for m in found if m.rule == "banner"]
            assert banners, doc.file
            # The banner at the top and at the bottom states the document's own label.
            assert found[0].rule == found[-1].rule == "banner", doc.file
            assert found[0].label == found[-1].label == label, doc.file
            # Nothing but decoration (and an HTML page title) comes before the top banner.
            text = visible_text(doc)
            before = text[: found[0].start]
            if doc.format == "html":
                title = BeautifulSoup(doc.read_text(), "html.parser").title
                before = before.replace(title.get_text() if title else "", "")
            assert before.strip(" \n*#") == "", doc.file
            assert text[found[-1].end :].strip(" \n*#") == "", doc.file


def test_questions_are_well_formed(rag_set: RagSet) -> None:
    ids = [q.id for q in rag_set.questions]
    assert len(ids) == len(set(ids))
    files = {doc.file for doc in rag_set.documents}
    texts = {doc.file: visible_text(doc) for doc in rag_set.documents}
    for q in rag_set.questions:
        assert q.lang in {"fr", "en"}, q.id
        assert q.question.strip(), q.id
        if not q.relevant:
            assert q.answer is None, q.id
            continue
        assert q.answer, q.id
        assert 1 <= len(q.relevant) <= 2, q.id
        for p in q.relevant:
            assert p.file in files, (q.id, p.file)
            assert 40 <= len(p.passage) <= 300, (q.id, len(p.passage))
            assert p.passage in texts[p.file], (q.id, p.file, p.passage)
        folded = q.answer.casefold()
        assert any(folded in p.passage.casefold() for p in q.relevant), q.id


def test_question_counts(rag_set: RagSet) -> None:
    lang_of = {doc.file: doc.lang for doc in rag_set.documents}
    answerable = [q for q in rag_set.questions if q.relevant]
    unanswerable = [q for q in rag_set.questions if not q.relevant]
    cross = [q for q in answerable if all(lang_of[p.file] != q.lang for p in q.relevant)]
    assert len(answerable) >= 80
    assert len(unanswerable) >= 10
    assert len(cross) >= 15
    by_lang = Counter(q.lang for q in rag_set.questions)
    assert by_lang["fr"] >= 40 and by_lang["en"] >= 40
    assert {q.lang for q in cross} == {"fr", "en"}
    assert {q.lang for q in unanswerable} == {"fr", "en"}
    # Every document is the evidence of at least one question.
    cited = {p.file for q in answerable for p in q.relevant}
    assert cited == set(lang_of)


def test_questions_carry_no_marking(rag_set: RagSet) -> None:
    for q in rag_set.questions:
        assert scan(q.question, FRENCH) == [], q.id


def test_data_files_are_valid_json(rag_set: RagSet) -> None:
    manifest = json.loads((rag_set.directory / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["documents"]) == len(rag_set.documents)
    lines = (rag_set.directory / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len([json.loads(line) for line in lines if line.strip()]) == len(rag_set.questions)


def test_set_is_package_data(rag_set: RagSet) -> None:
    import egide.evals

    package_dir = Path(egide.evals.__file__).parent
    assert rag_set.directory == package_dir / "data" / "rag"
