"""Chunking: structure first, the token budget always, and every character of the document."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egide.rag.chunking import Chunk, chunk_document
from egide.rag.parsing import ParsedDocument, Section, parse
from support.documents import PAGE_BREAK, Heading, make_docx

Counter = Callable[[str], int]


def words(text: str) -> int:
    return len(text.split())


def quarters(text: str) -> int:
    return math.ceil(len(text) / 4)


COUNTERS = {"words": words, "chars/4": quarters}


def document(*sections: Section) -> ParsedDocument:
    return ParsedDocument(
        format="text",
        mime_type="text/plain",
        sections=tuple(sections),
        pages=None,
        title=None,
        full_text="\n\n".join(s.text for s in sections),
    )


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def sentence(n: int, length: int = 12) -> str:
    return " ".join(f"mot{n}x{i}" for i in range(length)) + "."


class Counting:
    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.calls = 0

    def __call__(self, text: str) -> int:
        self.calls += 1
        return self.counter(text)


def test_for_embedding_prefixes_the_heading_path() -> None:
    chunk = Chunk(0, "Le texte.", 3, ("2. Logistique", "2.1 Carburant"), 7)
    assert chunk.for_embedding() == "2. Logistique > 2.1 Carburant\n\nLe texte."
    assert Chunk(0, "Le texte.", None, (), 2).for_embedding() == "Le texte."


def test_small_sections_stay_whole_and_carry_page_and_headings() -> None:
    doc = document(
        Section("(DR) Le convoi partira « demain ».", 1, ("1. Logistique",)),
        Section("Les véhicules sont prêts.", 2, ("2. Maintenance",)),
    )
    chunks = chunk_document(doc, words, max_tokens=50, min_tokens=10)
    assert [(c.index, c.text, c.page, c.headings) for c in chunks] == [
        (0, "(DR) Le convoi partira « demain ».", 1, ("1. Logistique",)),
        (1, "Les véhicules sont prêts.", 2, ("2. Maintenance",)),
    ]
    assert [c.tokens for c in chunks] == [words(c.for_embedding()) for c in chunks]


def test_long_section_splits_at_paragraph_boundaries() -> None:
    paragraphs = [" ".join(sentence(p * 10 + s, 10) for s in range(3)) for p in range(6)]
    doc = document(Section("\n\n".join(paragraphs), 4, ("Annexe",)))
    chunks = chunk_document(doc, words, max_tokens=70, min_tokens=10)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert chunk.tokens <= 70
        assert all(part in paragraphs for part in chunk.text.split("\n\n"))
        assert chunk.page == 4
    assert "\n\n".join(c.text for c in chunks) == doc.sections[0].text


def test_long_paragraph_splits_at_sentences_including_french_punctuation() -> None:
    text = (
        "« Le convoi partira demain à l'aube » ; il longera la côte. "
        "Le chef de section confirme : tout est prêt ! Les réservoirs sont pleins ? "
        "Oui, selon le rapport du dépôt de Brest. "
    ) * 4
    doc = document(Section(text.strip(), None, ()))
    chunks = chunk_document(doc, words, max_tokens=20, min_tokens=0)
    for chunk in chunks:
        assert chunk.tokens <= 20
        assert re.search(r"[.!?»;:]$", chunk.text), chunk.text
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_a_sentence_longer_than_the_budget_splits_at_words_then_characters() -> None:
    long_word = "x" * 500
    doc = document(Section(sentence(1, 80) + " " + long_word + " fin.", None, ("Titre",)))
    chunks = chunk_document(doc, quarters, max_tokens=30, min_tokens=0)
    assert all(c.tokens <= 30 for c in chunks)
    assert squeeze("".join(c.text for c in chunks)) == squeeze(doc.sections[0].text)


def test_chunks_never_cross_headings_or_pages_except_to_merge_tiny_pieces() -> None:
    body = " ".join(sentence(n) for n in range(8))
    doc = document(
        Section(body, 1, ("A",)),
        Section("Suite courte.", 2, ("A",)),  # tiny: joins the previous chunk, across the page
        Section("Autre partie, autre titre.", 2, ("B",)),  # tiny: never joins "A"
        Section(body, 3, ("B",)),
        Section(body, 4, ("B",)),  # large: starts a chunk of its own on its page
    )
    chunks = chunk_document(doc, words, max_tokens=60, min_tokens=10)
    a_chunks = [c for c in chunks if c.headings == ("A",)]
    b_chunks = [c for c in chunks if c.headings == ("B",)]
    assert len(a_chunks) + len(b_chunks) == len(chunks)
    assert a_chunks[-1].text.endswith(".\n\nSuite courte.") and a_chunks[-1].page == 1
    assert b_chunks[0].text.startswith("Autre partie, autre titre.\n\nmot0x0 ")
    assert b_chunks[0].page == 2
    assert [c.page for c in b_chunks[1:]] == sorted(c.page for c in b_chunks[1:])
    assert any(c.page == 4 and c.text.startswith("mot0x0 ") for c in b_chunks)
    assert all(c.tokens >= 10 for c in chunks)


def test_tiny_pieces_merge_with_the_previous_chunk_of_the_same_section() -> None:
    text = "\n\n".join(sentence(n, 10) for n in range(5))  # 5 × 11 words
    chunks = chunk_document(document(Section(text, 1, ())), words, max_tokens=30, min_tokens=12)
    assert all(c.tokens <= 30 for c in chunks)
    assert "\n\n".join(c.text for c in chunks) == text


def test_long_heading_paths_are_shortened_to_fit() -> None:
    headings = tuple(f"Niveau {n} " + "titre " * 10 for n in range(6))
    doc = document(Section(sentence(1, 30), 1, headings))
    chunks = chunk_document(doc, words, max_tokens=40, min_tokens=0)
    assert all(c.tokens <= 40 for c in chunks)
    assert chunks[0].headings == headings[-len(chunks[0].headings) :]
    assert words(" > ".join(chunks[0].headings)) <= 20


def test_counting_is_sparing() -> None:
    text = "\n\n".join(" ".join(sentence(p * 100 + s) for s in range(5)) for p in range(200))
    counter = Counting(words)
    chunks = chunk_document(document(Section(text, 1, ("Rapport",))), counter, max_tokens=220)
    assert all(c.tokens <= 220 for c in chunks)
    assert counter.calls <= 2 * len(chunks) + 5


def test_empty_sections_give_no_chunks_and_bad_budgets_are_refused() -> None:
    assert chunk_document(document(), words) == []
    assert chunk_document(document(Section("  \n ", 1, ())), words) == []
    with pytest.raises(ValueError):
        chunk_document(document(Section("x", 1, ())), words, max_tokens=0)


def test_parsed_docx_chunks_keep_pages_and_headings() -> None:
    blocks = [
        Heading("1. Logistique"),
        *(sentence(n, 15) for n in range(6)),
        PAGE_BREAK,
        Heading("2. Maintenance"),
        "(DR) Les véhicules sont révisés.",
    ]
    doc = parse("plan.docx", make_docx(blocks))
    chunks = chunk_document(doc, words, max_tokens=50, min_tokens=5)
    assert chunks[0].headings == ("1. Logistique",) and chunks[0].page == 1
    assert chunks[-1].headings == ("2. Maintenance",) and chunks[-1].page == 2
    assert chunks[-1].text == "(DR) Les véhicules sont révisés."
    assert chunks[-1].for_embedding() == "2. Maintenance\n\n(DR) Les véhicules sont révisés."


# Property tests: any document, any budget.

_WORD = st.one_of(
    st.text(alphabet="abcdeéèàçœ", min_size=1, max_size=9),
    st.sampled_from(["«", "»", "(DR)", "l'état-major", "Brest.", "prêt !", "oui ?", "fin;"]),
    st.text(alphabet="zx", min_size=20, max_size=90),  # longer than some budgets
)
_LINE = st.lists(_WORD, min_size=1, max_size=25).map(" ".join)
_PARAGRAPH = st.lists(_LINE, min_size=1, max_size=4).map("\n".join)
_TEXT = st.lists(_PARAGRAPH, min_size=1, max_size=5).map("\n\n".join)
_HEADINGS = st.lists(st.text(alphabet="ABCé 12.", min_size=1, max_size=30), max_size=3).map(tuple)
_SECTION = st.builds(Section, _TEXT, st.one_of(st.none(), st.integers(1, 4)), _HEADINGS)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sections=st.lists(_SECTION, max_size=6),
    counter=st.sampled_from(sorted(COUNTERS)),
    max_tokens=st.integers(12, 150),
    min_tokens=st.integers(0, 40),
)
def test_property_bounds_and_completeness(
    sections: Sequence[Section], counter: str, max_tokens: int, min_tokens: int
) -> None:
    count = COUNTERS[counter]
    doc = document(*sections)
    chunks = chunk_document(doc, count, max_tokens=max_tokens, min_tokens=min_tokens)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text.strip() == chunk.text and chunk.text
        assert chunk.tokens == count(chunk.for_embedding()) <= max_tokens
    assert squeeze("".join(c.text for c in chunks)) == squeeze("".join(s.text for s in sections))
    # Each chunk lies under one heading path and starts on the page of its first character.
    owners = [(s.headings, s.page) for s in sections for ch in s.text if not ch.isspace()]
    position = 0
    for chunk in chunks:
        size = len(squeeze(chunk.text))
        spanned = owners[position : position + size]
        assert len({headings for headings, _ in spanned}) == 1
        assert chunk.page == spanned[0][1]
        path = spanned[0][0]
        if chunk.headings:  # the innermost headings, the outermost of them maybe cut short
            kept = path[len(path) - len(chunk.headings) :]
            assert kept[1:] == chunk.headings[1:]
            assert squeeze(kept[0]).startswith(squeeze(chunk.headings[0]))
        position += size


@settings(max_examples=40, deadline=None)
@given(sections=st.lists(_SECTION, min_size=1, max_size=4), max_tokens=st.integers(100, 300))
def test_property_every_word_is_kept_in_order(sections: Sequence[Section], max_tokens: int) -> None:
    chunks = chunk_document(document(*sections), words, max_tokens=max_tokens, min_tokens=20)
    assert " ".join(c.text for c in chunks).split() == " ".join(s.text for s in sections).split()
