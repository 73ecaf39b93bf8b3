"""Structure recovered from a PDF's text lines: paragraphs from vertical gaps, headings from
font size (or bold numbered lines), running headers and footers from repetition.

A PDF carries no reliable structure, so headings are only recognised when the evidence is
clear: a line that is short, does not end like a sentence, and is set larger than the body
text (or bold and numbered like "2.3 Carburant"). When such lines would hold too much of the
text, the document is treated as having no headings at all.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from egide.rag.formats import Extraction

_NUMBERED = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVXLC]{1,6}\.|[A-Z]\.)\s+\S")
_SENTENCE_END = re.compile(r"[.,;:]$")
_DIGITS = re.compile(r"\d+")
_MAX_HEADING_SHARE = 0.3


@dataclass
class Line:
    text: str = ""
    size: float = 0.0  # rendered font size in points, 0 when unknown
    y: float | None = None  # baseline height on the page
    bold: bool = False


class LineReader:
    """A pypdf ``visitor_text`` callback that records each line's font size, height and
    weight. ``text`` is the page text exactly as the visitor saw it."""

    def __init__(self) -> None:
        self.lines: list[Line] = [Line()]
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def __call__(self, text: Any, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if not isinstance(text, str) or not text:
            return
        self.parts.append(text)
        for i, piece in enumerate(text.split("\n")):
            if i:
                self.lines.append(Line())
            line = self.lines[-1]
            line.text += piece
            if piece.strip():
                _measure(line, cm, tm, font, size)


def _measure(line: Line, cm: Any, tm: Any, font: Any, size: Any) -> None:
    try:
        a = tm[0] * cm[0] + tm[1] * cm[2]
        b = tm[0] * cm[1] + tm[1] * cm[3]
        c = tm[2] * cm[0] + tm[3] * cm[2]
        d = tm[2] * cm[1] + tm[3] * cm[3]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        rendered = float(size) * math.sqrt(abs(a * d - b * c))
    except (TypeError, ValueError, IndexError):
        return
    line.size = max(line.size, round(rendered, 1))
    if line.y is None:
        line.y = float(y)
    base_font = str(font.get("/BaseFont", "")) if hasattr(font, "get") else ""
    line.bold = line.bold or any(w in base_font for w in ("Bold", "Black", "Heavy"))


def _key(line: Line) -> str:
    """What a running header or footer keeps from page to page: its text (page numbers aside)
    and its height on the page."""
    text = _DIGITS.sub("#", " ".join(line.text.split()).lower())
    return text if line.y is None else f"{text}@{round(line.y / 3)}"


def running_lines(pages: list[list[Line]], body: float) -> set[str]:
    """Keys of lines repeated at the top or bottom of at least half the pages, in a font no
    larger than the body text's (larger lines there are headings)."""
    if len(pages) < 2:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        filled = [line for line in lines if line.text.strip() and line.size <= body]
        seen.update({_key(line) for line in filled[:2] + filled[-2:]})
    return {key for key, count in seen.items() if count >= max(2, len(pages) / 2)}


def body_size(pages: list[list[Line]]) -> float:
    """The font size of most of the text, 0 when unknown."""
    weight: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            if line.size > 0:
                weight[line.size] += len(line.text.strip())
    return weight.most_common(1)[0][0] if weight else 0.0


def _heading_key(line: Line, body: float) -> tuple[float, bool] | None:
    text = " ".join(line.text.split())
    if not text or len(text) > 120 or len(text.split()) > 14 or line.size <= 0:
        return None
    if _SENTENCE_END.search(text) or not any(ch.isalpha() for ch in text):
        return None
    larger = line.size >= body * 1.12
    bold_numbered = line.bold and line.size >= body * 0.95 and _NUMBERED.match(text) is not None
    return (line.size, line.bold) if larger or bold_numbered else None


def headings(pages: list[list[Line]], body: float, running: set[str]) -> dict[tuple[int, int], int]:
    """Heading level (1 = outermost) of each heading line, by (page index, line index)."""
    if body <= 0:
        return {}
    keys: dict[tuple[int, int], tuple[float, bool]] = {}
    chars = heading_chars = 0
    for p, lines in enumerate(pages):
        for i, line in enumerate(lines):
            size = len(line.text.strip())
            chars += size
            key = _heading_key(line, body) if _key(line) not in running else None
            if key is not None:
                keys[(p, i)] = key
                heading_chars += size
    if not keys or heading_chars > chars * _MAX_HEADING_SHARE:
        return {}
    ranks = sorted(set(keys.values()), reverse=True)
    return {where: min(ranks.index(key) + 1, 6) for where, key in keys.items()}


def lay_out(
    out: Extraction, page: int, lines: list[Line], levels: dict[int, int], running: set[str]
) -> None:
    """Append one page's headings and paragraphs. ``levels`` maps a line's index to its heading
    level; lines whose key is in ``running`` (headers, footers) stand as paragraphs of their own."""
    gaps = [
        prev.y - line.y
        for prev, line in itertools.pairwise(lines)
        if prev.y is not None and line.y is not None and 0 < prev.y - line.y < 4 * line.size
    ]
    # Lines of a paragraph are the most tightly spaced: the lower quartile is their spacing.
    usual = statistics.quantiles(gaps, n=4)[0] if len(gaps) >= 3 else None
    paragraph: list[str] = []
    heading: list[str] = []
    level: int | None = None
    previous: Line | None = None

    def flush() -> None:
        if heading and level is not None:
            out.heading(" ".join(heading), level, page)
        if paragraph:
            out.paragraph("\n".join(paragraph), page)
        heading.clear()
        paragraph.clear()

    for i, line in enumerate(lines):
        if not line.text.strip():
            continue
        this = levels.get(i)
        if this is not None:
            wrapped = this == level and bool(heading) and not _NUMBERED.match(line.text.strip())
            if not wrapped:
                flush()
                level = this
            heading.append(line.text.strip())
        else:
            alone = _key(line) in running
            if heading or alone or (previous is not None and _new_paragraph(previous, line, usual)):
                flush()
            level = None
            paragraph.append(line.text.rstrip())
            if alone:
                flush()
        previous = line
    flush()


def _new_paragraph(previous: Line, line: Line, usual: float | None) -> bool:
    if usual is None or previous.y is None or line.y is None:
        return False
    gap = previous.y - line.y
    return gap < 0 or gap > usual * 1.3 + 0.5
