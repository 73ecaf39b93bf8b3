"""Format readers. Each turns a file's bytes into an :class:`Extraction`: the body as an ordered
list of :class:`Block` (headings and paragraphs with their page), plus the visible text that sits
outside the body (running headers and footers, notes, an HTML ``<title>``).

Readers raise :mod:`egide.errors` document errors only; a parser library's own exception is
wrapped where the library is called.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

SUPPORTED = "PDF, Word (.docx), HTML, Markdown or plain text"


@dataclass(frozen=True)
class Block:
    """A heading (``level`` 0 for a document title, 1 for the outermost heading, …) or a
    paragraph of body text (``level`` None). ``text`` may hold line breaks; paragraphs never
    hold blank lines."""

    text: str
    page: int | None = None
    level: int | None = None


@dataclass
class Extraction:
    blocks: list[Block] = field(default_factory=list)
    pages: int | None = None
    title: str | None = None
    leading: list[str] = field(default_factory=list)  # shown before the body: headers, <title>
    trailing: list[str] = field(default_factory=list)  # shown after it: footers, notes

    def paragraph(self, text: str, page: int | None = None) -> None:
        """Append body text; blank lines inside ``text`` start new paragraphs."""
        for part in split_paragraphs(text):
            self.blocks.append(Block(part, page))

    def heading(self, text: str, level: int, page: int | None = None) -> None:
        text = " ".join(text.split())
        if text:
            self.blocks.append(Block(text, page, level))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+\n")
_BLANK_LINES = re.compile(r"\n(?:[ \t\u00a0]*\n)+")


def clean(text: str) -> str:
    """Normalise newlines, drop control characters, strip trailing spaces on each line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    return _TRAILING_SPACE.sub("\n", text).rstrip().strip("\n")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs at blank lines; a paragraph's indentation (code, verse) is kept."""
    return [part for part in _BLANK_LINES.split(clean(text)) if part.strip()]


def display_name(filename: str) -> str:
    """The file's base name, safe to put in an error message."""
    base = os.path.basename(filename.replace("\\", "/")).strip()
    base = "".join(ch for ch in base if ch.isprintable())
    if not base:
        return "the document"
    return base if len(base) <= 120 else base[:117] + "..."
