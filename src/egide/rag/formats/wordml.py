"""WordprocessingML (the XML inside a .docx): paragraphs, tables and page breaks, in reading
order. Works on any container of block content: a body, a header, a footnote, a table cell."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from docx.oxml.ns import qn

from egide.rag.formats import Extraction

Element = Any  # lxml elements: the parser library ships no type information

W_P, W_TBL, W_TR, W_TC = qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc")
W_T, W_TAB, W_BR, W_CR = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")
W_PPR, W_TYPE, W_VAL = qn("w:pPr"), qn("w:type"), qn("w:val")
W_RENDERED = qn("w:lastRenderedPageBreak")
W_PAGE_BREAK_BEFORE, W_SECT_PR = qn("w:pageBreakBefore"), qn("w:sectPr")
W_NO_BREAK_HYPHEN, W_SOFT_HYPHEN = qn("w:noBreakHyphen"), qn("w:softHyphen")
# Subtrees whose text is not shown: properties, alternative renderings, moved-away text.
_HIDDEN = frozenset(
    {qn("w:pPr"), qn("w:rPr"), qn("w:sdtPr"), qn("w:moveFrom"), qn("w:del"), qn("w:instrText")}
    | {"{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"}
)
_OFF = frozenset({"0", "false", "off"})


class _PageBreak:
    """Marks a page break inside a paragraph's text."""


PAGE_BREAK = _PageBreak()


class Walker:
    """Appends the blocks of WordprocessingML containers to an :class:`Extraction`.

    ``rendered`` selects how pages are counted: Word's own record of where it broke pages
    (``w:lastRenderedPageBreak``), or else explicit breaks (page breaks, "page break before",
    section breaks). ``heading_level`` maps a paragraph to its heading level, or None.
    """

    def __init__(
        self,
        out: Extraction,
        *,
        rendered: bool,
        heading_level: Callable[[Element], int | None],
    ) -> None:
        self.out = out
        self.rendered = rendered
        self.heading_level = heading_level
        self.breaks = 0

    @property
    def page(self) -> int:
        return self.breaks + 1

    def blocks(self, container: Element) -> None:
        for child in container:
            if child.tag == W_P:
                self.paragraph(child)
            elif child.tag == W_TBL:
                page = self.page
                rows = list(self.rows(child))
                if rows:
                    self.out.paragraph("\n".join(rows), page)
            elif child.tag not in _HIDDEN:
                self.blocks(child)  # content controls, custom XML, notes, comments

    def paragraph(self, p: Element) -> None:
        if not self.rendered and _on(p.find(f"{W_PPR}/{W_PAGE_BREAK_BEFORE}")):
            self.breaks += 1
        pieces: list[str | _PageBreak] = []
        _collect(p, pieces, rendered=self.rendered)
        level = self.heading_level(p)
        text: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                text.append(piece)
            else:
                self.emit(text, level)
                self.breaks += 1
        self.emit(text, level)
        sect = p.find(f"{W_PPR}/{W_SECT_PR}")
        if not self.rendered and sect is not None:
            kind = sect.find(qn("w:type"))
            if kind is None or kind.get(W_VAL) != "continuous":
                self.breaks += 1

    def emit(self, text: list[str], level: int | None) -> None:
        joined = "".join(text)
        text.clear()
        if not joined.strip():
            return
        if level is None:
            self.out.paragraph(joined, self.page)
        else:
            self.out.heading(joined, level, self.page)

    def rows(self, table: Element) -> Iterable[str]:
        for row in table.iter(W_TR):
            if row.getparent() is not table:
                continue  # a nested table's row: read with its cell
            cells = [self.cell(cell) for cell in row.iter(W_TC) if cell.getparent() is row]
            line = " | ".join(cell for cell in cells if cell)
            if line:
                yield line

    def cell(self, tc: Element) -> str:
        inner = Extraction()
        walker = Walker(inner, rendered=self.rendered, heading_level=lambda _: None)
        walker.breaks = self.breaks
        walker.blocks(tc)
        self.breaks = walker.breaks
        return " ".join(" ".join(block.text.split()) for block in inner.blocks)


def _on(flag: Element | None) -> bool:
    return flag is not None and flag.get(W_VAL, "true").lower() not in _OFF


def _collect(element: Element, pieces: list[str | _PageBreak], *, rendered: bool) -> None:
    for child in element:
        tag = child.tag
        if tag in _HIDDEN:
            continue
        if tag == W_T:
            pieces.append(child.text or "")
        elif tag == W_TAB:
            pieces.append("\t")
        elif tag == W_CR:
            pieces.append("\n")
        elif tag == W_BR:
            explicit = child.get(W_TYPE) == "page" and not rendered
            pieces.append(PAGE_BREAK if explicit else "\n")
        elif tag == W_RENDERED:
            if rendered:
                pieces.append(PAGE_BREAK)
        elif tag == W_NO_BREAK_HYPHEN:
            pieces.append("-")
        elif tag == W_P:  # a text box's paragraph inside this one
            pieces.append("\n")
            _collect(child, pieces, rendered=rendered)
            pieces.append("\n")
        elif tag != W_SOFT_HYPHEN:
            _collect(child, pieces, rendered=rendered)
