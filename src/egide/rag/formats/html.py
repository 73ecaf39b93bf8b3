"""HTML through BeautifulSoup's ``html.parser``: h1–h6 headings, block elements as paragraphs,
table rows as lines. Scripts, styles and templates are dropped; ``<title>`` and navigation are
kept as text around the body, not as sections."""

from __future__ import annotations

import codecs
import re

from bs4 import BeautifulSoup
from bs4.element import CData, NavigableString, PageElement, Tag

from egide.errors import MalformedDocument
from egide.rag.formats import Extraction, display_name
from egide.rag.formats.text import decode

_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.I)
_XML_DECLARATION = re.compile(r"<\?xml[^>]*>", re.I)
_SPACES = re.compile(r"[ \t\n\r\f]+")
_DROPPED = frozenset({"script", "style", "template", "noscript", "head", "title", "nav"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "body", "caption", "center", "dd"),
        *("details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer"),
        *("form", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "ol", "p"),
        *("section", "summary", "ul"),
    }
)


def extract(filename: str, data: bytes) -> Extraction:
    text = decode(filename, data, fallback=_declared_charset(data))
    text = _XML_DECLARATION.sub("", text) + "\n"  # "\n": never mistaken for a file name or URL
    name = display_name(filename)
    try:
        soup = BeautifulSoup(text, "html.parser")
        out = Extraction()
        if soup.title is not None:
            title = " ".join(soup.title.get_text(" ").split())
            out.title = title or None
            if title:
                out.leading.append(title)
        for nav in soup.find_all("nav"):
            if isinstance(nav, Tag):
                nav_text = _lines(nav.get_text("\n"))
                if nav_text:
                    out.leading.append(nav_text)
        _Walker(out).block(soup)
    except RecursionError as exc:
        raise MalformedDocument(
            f"{name} is nested too deeply to be read as HTML: simplify it or save it as PDF"
        ) from exc
    except Exception as exc:  # the parser's own failure must not escape
        raise MalformedDocument(
            f"{name} could not be read as HTML: check the file, or save it as PDF or text"
        ) from exc
    return out


def _declared_charset(data: bytes) -> str:
    found = _CHARSET.search(data[:4096])
    if found:
        try:
            return codecs.lookup(found.group(1).decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            pass
    return "cp1252"


def _lines(text: str) -> str:
    """Collapse spaces as a browser does (non-breaking spaces stay), one line per ``\n``."""
    lines = (_SPACES.sub(" ", line).strip(" ") for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _is_text(node: PageElement) -> bool:
    return type(node) is NavigableString or type(node) is CData


class _Walker:
    def __init__(self, out: Extraction) -> None:
        self.out = out
        self.buffer: list[str] = []

    def flush(self) -> None:
        text = _lines("".join(self.buffer))
        self.buffer.clear()
        if text:
            self.out.paragraph(text)

    def block(self, tag: Tag) -> None:
        for node in tag.children:
            if _is_text(node):
                self.buffer.append(_SPACES.sub(" ", str(node)))
            elif isinstance(node, Tag):
                self.element(node)
        self.flush()

    def element(self, tag: Tag) -> None:
        name = tag.name.lower()
        if name in _DROPPED:
            return
        if name == "br":
            self.buffer.append("\n")
        elif name in _HEADINGS:
            self.flush()
            self.out.heading(tag.get_text(" "), _HEADINGS[name])
        elif name == "pre":
            self.flush()
            self.out.paragraph(tag.get_text())
        elif name == "table":
            self.flush()
            self.table(tag)
        elif name in _BLOCKS:
            self.flush()
            if name == "li":
                self.buffer.append("- ")
            self.block(tag)
        else:
            for node in tag.children:
                if _is_text(node):
                    self.buffer.append(_SPACES.sub(" ", str(node)))
                elif isinstance(node, Tag):
                    self.element(node)

    def table(self, table: Tag) -> None:
        rows: list[str] = []
        for row in table.find_all("tr"):
            if not isinstance(row, Tag) or row.find_parent("table") is not table:
                continue
            cells = row.find_all(["td", "th"], recursive=False)
            texts = (" ".join(cell.get_text(" ").split()) for cell in cells)
            line = " | ".join(text for text in texts if text)
            if line:
                rows.append(line)
        caption = table.find("caption", recursive=False)
        if isinstance(caption, Tag):
            rows.insert(0, " ".join(caption.get_text(" ").split()))
        if rows:
            self.out.paragraph("\n".join(rows))
