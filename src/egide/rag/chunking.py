"""Structure-aware chunking: passages that stay under one heading path and on one page, sized to
a token budget that includes the heading path they are embedded with.

A long section is cut at paragraph boundaries, then sentences (French « » and ; included), then
lines, clauses and words, and characters only as a last resort. Every chunk's text is a verbatim
slice of its section, and the chunks of a section cover all of its text, in order. Pieces below
``min_tokens`` are merged with a neighbour under the same heading path when the result fits, even
across a page boundary.

``count_tokens`` may be slow, so sizes are estimated from characters (at a tokens-per-character
ratio learnt from the document) and only confirmed by counting.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from egide.rag.parsing import ParsedDocument

HEADING_SEPARATOR = " > "

# Boundaries from the coarsest to the finest; each pattern's last group is the separator.
_BOUNDARIES = (
    re.compile(r"(\n[ \t\u00a0]*\n\s*)"),  # paragraphs
    re.compile(r"[.!?…]+(?:[ \u00a0\u202f]?[»”\"’)\]])*(\s+)"),  # sentences
    re.compile(r"(\n\s*)"),  # lines
    re.compile(r"[;:](?:[ \u00a0\u202f]?[»”\"’)\]])*(\s+)|(\s+)(?=«)"),  # clauses, quotations
    re.compile(r"(\s+)"),  # words
)
_CHARACTERS = len(_BOUNDARIES)
_CALIBRATION_CHARS = 2000


@dataclass(frozen=True)
class Chunk:
    index: int  # 0-based position in the document
    text: str  # the passage itself: what is shown to the user and cited
    page: int | None  # page where the chunk starts
    headings: tuple[str, ...]
    tokens: int  # tokens of for_embedding(), as counted by the chunker's count_tokens

    def for_embedding(self) -> str:
        """The heading path then the passage: ``"Heading > Sub-heading\\n\\ntext"``."""
        return _prefix(self.headings) + self.text


def _prefix(headings: tuple[str, ...]) -> str:
    return HEADING_SEPARATOR.join(headings) + "\n\n" if headings else ""


@dataclass(frozen=True)
class _Draft:
    section: int  # the section holding the end of the draft
    end: int  # where the draft ends in that section's text
    text: str
    page: int | None
    headings: tuple[str, ...]  # as embedded, maybe shortened
    path: tuple[str, ...]  # the section's full heading path
    tokens: int


class _Counter:
    """``count_tokens`` with a running tokens-per-character estimate."""

    def __init__(self, count_tokens: Callable[[str], int]) -> None:
        self.count_tokens = count_tokens
        self.tokens = 0
        self.chars = 0

    def count(self, text: str) -> int:
        tokens = self.count_tokens(text)
        if len(text) >= 100 or not self.chars:
            self.tokens += tokens
            self.chars += len(text)
        return tokens

    def estimate(self, chars: int) -> float:
        return chars * 1.05 * self.tokens / max(self.chars, 1)


def chunk_document(
    doc: ParsedDocument,
    count_tokens: Callable[[str], int],
    *,
    max_tokens: int = 220,
    min_tokens: int = 40,
) -> list[Chunk]:
    """Cut ``doc`` into chunks whose ``for_embedding()`` holds at most ``max_tokens`` tokens."""
    if max_tokens < 1 or min_tokens < 0:
        raise ValueError("max_tokens must be at least 1 and min_tokens at least 0")
    counter = _Counter(count_tokens)
    sample = "\n\n".join(section.text for section in doc.sections[:20])[:_CALIBRATION_CHARS]
    if not sample.strip():
        return []
    counter.count(sample)
    fitted: dict[tuple[str, ...], tuple[tuple[str, ...], int]] = {}
    drafts: list[_Draft] = []
    for number, section in enumerate(doc.sections):
        if section.headings not in fitted:
            fitted[section.headings] = _fit_headings(section.headings, counter, max_tokens)
        headings, prefix_tokens = fitted[section.headings]
        for start, end, tokens in _pack(section.text, headings, prefix_tokens, counter, max_tokens):
            text = section.text[start:end]
            drafts.append(
                _Draft(number, end, text, section.page, headings, section.headings, tokens)
            )
    merged = _merge_small(drafts, doc, fitted, counter, max_tokens, min_tokens)
    return [
        Chunk(index, draft.text, draft.page, draft.headings, draft.tokens)
        for index, draft in enumerate(merged)
    ]


def _fit_headings(
    headings: tuple[str, ...], counter: _Counter, max_tokens: int
) -> tuple[tuple[str, ...], int]:
    """The heading path, shortened (outermost headings first) to at most half the budget."""
    half = max_tokens // 2
    while True:
        tokens = counter.count(_prefix(headings)) if headings else 0
        if tokens <= half:
            return headings, tokens
        if len(headings) > 1:
            headings = headings[1:]
            continue
        words = headings[0].split()
        if len(words) <= 1:
            return (), 0
        headings = (" ".join(words[: len(words) // 2]),)


def _split(text: str, start: int, end: int, level: int) -> list[tuple[int, int, int]]:
    """Cut at the coarsest boundary, from ``level`` down, that yields more than one piece. A
    single piece comes back only for a single character."""
    while True:
        pieces = _pieces(text, start, end, level)
        if len(pieces) > 1 or level >= _CHARACTERS:
            return pieces
        level += 1


def _pieces(text: str, start: int, end: int, level: int) -> list[tuple[int, int, int]]:
    """``text[start:end]`` cut at the boundaries of ``level``, each piece stripped of spaces and
    tagged with the next level to cut it at."""
    spans: list[tuple[int, int]] = []
    if level >= _CHARACTERS:
        middle = (start + end) // 2
        spans = [(start, middle), (middle, end)]
    else:
        cursor = start
        for match in _BOUNDARIES[level].finditer(text, start, end):
            group = next(g for g in range(match.re.groups, 0, -1) if match.group(g) is not None)
            spans.append((cursor, match.start(group)))
            cursor = match.end(group)
        spans.append((cursor, end))
    pieces: list[tuple[int, int, int]] = []
    for lo, hi in spans:
        while lo < hi and text[lo].isspace():
            lo += 1
        while hi > lo and text[hi - 1].isspace():
            hi -= 1
        if lo < hi:
            pieces.append((lo, hi, level + 1))
    return pieces


def _pack(
    text: str, headings: tuple[str, ...], prefix_tokens: int, counter: _Counter, max_tokens: int
) -> list[tuple[int, int, int]]:
    """Group the section's pieces into spans that fit; returns (start, end, tokens)."""
    prefix = _prefix(headings)
    units = deque(_pieces(text, 0, len(text), 0))
    if not units:
        return []
    room = max(max_tokens - prefix_tokens, 1)
    estimate = counter.estimate(units[-1][1] - units[0][0])
    target = min(room, estimate / max(math.ceil(estimate / (room * 0.95)), 1) * 1.15)
    packed: list[tuple[int, int, int]] = []
    while units:
        taken = [units.popleft()]
        size = counter.estimate(taken[0][1] - taken[0][0])
        while units:  # up to the target, or past it when that lands closer to it
            grown = counter.estimate(units[0][1] - taken[0][0])
            if grown > target and (grown > room or grown - target >= target - size):
                break
            taken.append(units.popleft())
            size = grown
        while True:
            lo, hi, level = taken[0][0], taken[-1][1], taken[0][2]
            if len(taken) == 1 and hi - lo > 1 and counter.estimate(hi - lo) > room * 1.5:
                tokens = max_tokens + 1  # clearly too long: cut it without counting
            else:
                tokens = counter.count(prefix + text[lo:hi])
            if tokens <= max_tokens:
                break
            if len(taken) > 1:  # give back the pieces beyond what the count says fits
                allowed = (hi - lo) * max_tokens / tokens
                units.appendleft(taken.pop())
                while len(taken) > 1 and taken[-1][1] - lo > allowed:
                    units.appendleft(taken.pop())
                continue
            pieces = _split(text, lo, hi, level)
            if len(pieces) == 1:
                raise ValueError(
                    f"max_tokens={max_tokens} is too small: one character under its headings "
                    "does not fit"
                )
            units.extendleft(reversed(pieces[1:]))
            taken = [pieces[0]]
        packed.append((lo, hi, tokens))
    return packed


def _merge_small(
    drafts: list[_Draft],
    doc: ParsedDocument,
    fitted: dict[tuple[str, ...], tuple[tuple[str, ...], int]],
    counter: _Counter,
    max_tokens: int,
    min_tokens: int,
) -> list[_Draft]:
    merged: list[_Draft] = []
    for draft in drafts:
        previous = merged[-1] if merged else None
        if (
            previous is None
            or previous.path != draft.path
            or min(previous.tokens, draft.tokens) >= min_tokens
        ):
            merged.append(draft)
            continue
        prefix_tokens = fitted[draft.path][1]
        if previous.tokens + draft.tokens - prefix_tokens > max_tokens + 2:
            merged.append(draft)
            continue
        if previous.section == draft.section:
            between = doc.sections[draft.section].text[previous.end : draft.end]
            text = previous.text + between
        else:
            text = f"{previous.text}\n\n{draft.text}"
        tokens = counter.count(_prefix(draft.headings) + text)
        if tokens > max_tokens:
            merged.append(draft)
            continue
        merged[-1] = replace(draft, text=text, page=previous.page, tokens=tokens)
    return merged
