"""Markdown through markdown-it-py (CommonMark plus tables): ATX and setext headings, paragraphs,
lists and table rows as lines, code blocks kept verbatim, a YAML front matter's ``title``."""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

from egide.errors import MalformedDocument
from egide.rag.formats import Extraction, clean, display_name
from egide.rag.formats.text import decode

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)
_VERBATIM = frozenset({"text", "code_inline"})


def extract(filename: str, data: bytes) -> Extraction:
    text = clean(decode(filename, data))
    out = Extraction()
    front = _FRONT_MATTER.match(text)
    if front:
        out.leading.append(front.group(1).strip())
        title = _TITLE.search(front.group(1))
        if title:
            out.title = title.group(1).strip("\"'") or None
        text = text[front.end() :]
    parser = MarkdownIt("commonmark").enable("table")
    try:
        tokens = parser.parse(text)
    except Exception as exc:  # the parser's own failure must not escape
        raise MalformedDocument(
            f"{display_name(filename)} could not be read as Markdown: "
            "check the file, or upload it as plain text (.txt)"
        ) from exc
    _walk(tokens, out)
    return out


def _inline(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type in _VERBATIM or child.type == "image":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
    return "".join(parts).strip()


def _walk(tokens: Sequence[Token], out: Extraction) -> None:
    lines: list[str] = []  # the open list or table, emitted as one paragraph
    markers: list[str] = []  # one entry per open list item
    row: list[str] = []
    nesting = 0  # open lists and tables
    heading: int | None = None
    cell = False
    for token in tokens:
        kind = token.type
        if kind == "heading_open":
            heading = int(token.tag[1:])
        elif kind == "heading_close":
            heading = None
        elif kind in ("bullet_list_open", "ordered_list_open", "table_open"):
            nesting += 1
        elif kind in ("bullet_list_close", "ordered_list_close", "table_close"):
            nesting -= 1
            if nesting == 0 and lines:
                out.paragraph("\n".join(lines))
                lines.clear()
        elif kind == "list_item_open":
            markers.append(f"{token.info}{token.markup}" if token.info else token.markup)
        elif kind == "list_item_close":
            markers.pop()
        elif kind in ("th_open", "td_open"):
            cell = True
        elif kind in ("th_close", "td_close"):
            cell = False
        elif kind == "tr_close":
            lines.append(" | ".join(row))
            row.clear()
        elif kind == "inline":
            content = _inline(token)
            if heading is not None:
                out.heading(content, heading)
            elif cell:
                row.append(" ".join(content.split()))
            elif nesting:
                lines.append(_list_line(content, markers))
            elif content:
                out.paragraph(content)
        elif kind in ("fence", "code_block", "html_block"):
            if nesting:
                lines.append(token.content.rstrip("\n"))
            else:
                out.paragraph(token.content)


def _list_line(content: str, markers: list[str]) -> str:
    if not markers:
        return content
    indent = "  " * (len(markers) - 1)
    return f"{indent}{markers[-1]} {content}"
