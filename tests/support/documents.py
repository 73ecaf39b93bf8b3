"""Builders of realistic test documents, in every format the knowledge bases read.

A document is described once as a sequence of blocks and rendered to any format::

    from support.documents import PAGE_BREAK, Heading, Table, make_docx, make_pdf

    blocks = [
        Heading("2. Logistique"),
        Heading("2.1 Carburant", level=2),
        "(DR) Le convoi partira à l'aube ; le cœur du dispositif est prêt.",
        Table([["Dépôt", "Volume"], ["Brest", "12 000 L"]]),
        PAGE_BREAK,
        "Suite du paragraphe sur la deuxième page.",
    ]
    pdf = make_pdf(split_pages(blocks), header="DIFFUSION RESTREINTE")
    docx = make_docx(blocks, header="DIFFUSION RESTREINTE", footer="Page de pied")

A paragraph is a ``str`` (``"\\n"`` inside it is a line break). PDF text uses the standard
Helvetica font, so it must be in Windows-1252 (French accents, « », œ, €, — are fine).
"""

from __future__ import annotations

import html
import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import docx
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter


@dataclass(frozen=True)
class Heading:
    """A heading; ``level`` 1 is the outermost, 0 is a document title (DOCX "Title" style)."""

    text: str
    level: int = 1


@dataclass(frozen=True)
class Table:
    """A table given as rows of cell texts; the first row is rendered as a header row."""

    rows: Sequence[Sequence[str]]


class PageBreak:
    """A page break (DOCX); :func:`split_pages` turns it into PDF pages."""


PAGE_BREAK = PageBreak()

Block = str | Heading | Table | PageBreak
PdfBlock = str | Heading | Table

_PDF_HEADING_SIZES = {0: 20, 1: 16, 2: 13.5, 3: 12.5}
_PDF_BODY_SIZE = 11


def split_pages(blocks: Sequence[Block]) -> list[list[PdfBlock]]:
    """Cut a block sequence at its page breaks: the ``pages`` argument of :func:`make_pdf`."""
    pages: list[list[PdfBlock]] = [[]]
    for block in blocks:
        if isinstance(block, PageBreak):
            pages.append([])
        else:
            pages[-1].append(block)
    return pages


def make_pdf(
    pages: Sequence[Sequence[PdfBlock]],
    *,
    header: str | None = None,
    footer: str | None = None,
    title: str | None = None,
    password: str | None = None,
) -> bytes:
    """A PDF with one page per item of ``pages`` (an empty page has no text, like a scan).

    Headings are set in larger bold type, paragraphs in 11 pt with space between them, so a
    reader can recover both. ``header`` and ``footer`` are printed small on every page
    (``{page}`` in them becomes the page number). ``title`` goes in the metadata. With
    ``password``, the file is encrypted (AES-256) and opens only with it.
    """
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_auto_page_break(False)
    pdf.set_margins(20, 20, 20)
    if title:
        pdf.set_title(title)
    for number, blocks in enumerate(pages, start=1):
        pdf.add_page()
        if header:
            _pdf_line(pdf, header.format(page=number), y=8, size=8)
        pdf.set_y(22)
        for block in blocks:
            _pdf_block(pdf, block)
        if footer:
            _pdf_line(pdf, footer.format(page=number), y=pdf.h - 12, size=8)
    data = bytes(pdf.output())
    return encrypt_pdf(data, password) if password is not None else data


def _pdf_line(pdf: FPDF, text: str, *, y: float, size: float) -> None:
    pdf.set_font("Helvetica", size=size)
    pdf.set_xy(pdf.l_margin, y)
    pdf.cell(0, 5, text, align="C")


def _pdf_block(pdf: FPDF, block: PdfBlock) -> None:
    if isinstance(block, Heading):
        size = _PDF_HEADING_SIZES.get(block.level, 12)
        pdf.set_font("Helvetica", "B", size)
        pdf.multi_cell(0, size * 0.55, block.text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2.5)
    elif isinstance(block, Table):
        pdf.set_font("Helvetica", size=_PDF_BODY_SIZE)
        with pdf.table() as table:
            for row in block.rows:
                table_row = table.row()
                for cell in row:
                    table_row.cell(cell)
        pdf.ln(4)
    else:
        pdf.set_font("Helvetica", size=_PDF_BODY_SIZE)
        pdf.multi_cell(0, 5.5, block, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)


def encrypt_pdf(data: bytes, user_password: str = "secret", owner_password: str = "owner") -> bytes:
    """``data`` encrypted with AES-256. An empty ``user_password`` gives a file any reader
    opens, restricted only by its owner password (still an encrypted file)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(
    blocks: Sequence[Block],
    *,
    header: str | None = None,
    footer: str | None = None,
    title: str | None = None,
    heading_style: str = "Heading {level}",
    rendered_page_breaks: bool = False,
) -> bytes:
    """A Word document. Headings use the paragraph style ``heading_style`` (e.g. ``"Titre
    {level}"`` creates French-named styles; level 0 always uses "Title"). ``header`` and
    ``footer`` fill the section's running header and footer; ``title`` goes in the core
    properties. Page breaks are explicit breaks (``w:br w:type="page"``), or with
    ``rendered_page_breaks`` the marks Word records where it broke pages
    (``w:lastRenderedPageBreak``), as in a file saved by Word.
    """
    document = docx.Document()
    if title:
        document.core_properties.title = title
    section = document.sections[0]
    if header is not None:
        section.header.paragraphs[0].text = header
    if footer is not None:
        section.footer.paragraphs[0].text = footer
    pending_break = False
    for block in blocks:
        if isinstance(block, PageBreak):
            if rendered_page_breaks:
                pending_break = True
            else:
                document.add_page_break()  # type: ignore[no-untyped-call]
            continue
        if isinstance(block, Heading):
            paragraph = document.add_paragraph(block.text, _style(document, block, heading_style))
        elif isinstance(block, Table):
            table = document.add_table(rows=len(block.rows), cols=len(block.rows[0]))
            for cells, row in zip(table.rows, block.rows, strict=True):
                for cell, text in zip(cells.cells, row, strict=True):
                    cell.text = text
            paragraph = table.rows[0].cells[0].paragraphs[0]
        else:
            first, *others = block.split("\n")
            paragraph = document.add_paragraph()
            run = paragraph.add_run(first)
            for line in others:
                run.add_break()
                run.add_text(line)
        if pending_break:
            runs = paragraph._p.findall(qn("w:r"))
            if runs:
                runs[0].insert(0, OxmlElement("w:lastRenderedPageBreak"))
            pending_break = False
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _style(document: DocxDocument, heading: Heading, pattern: str) -> str:
    if heading.level == 0:
        return "Title"
    name = pattern.format(level=heading.level)
    if name not in [style.name for style in document.styles]:
        style = document.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        style.base_style = document.styles["Normal"]
    return name


def make_html(
    blocks: Sequence[PdfBlock],
    *,
    title: str | None = None,
    nav: Sequence[str] = (),
    script: str | None = None,
    encoding: str = "utf-8",
) -> bytes:
    """An HTML page: headings as ``<hN>``, paragraphs as ``<p>`` (line breaks as ``<br>``),
    tables with a header row. ``nav`` links go in a ``<nav>``; ``script`` in a ``<script>``
    (whose text a reader never sees). Encoded in ``encoding``, declared in a ``<meta>``."""
    body: list[str] = []
    if nav:
        links = "".join(f'<li><a href="#">{html.escape(item)}</a></li>' for item in nav)
        body.append(f"<nav><ul>{links}</ul></nav>")
    if script is not None:
        body.append(f"<script>{script}</script>")
    for block in blocks:
        if isinstance(block, Heading):
            level = max(block.level, 1)
            body.append(f"<h{level}>{html.escape(block.text)}</h{level}>")
        elif isinstance(block, Table):
            head, *rows = block.rows
            cells = "".join(f"<th>{html.escape(cell)}</th>" for cell in head)
            lines = [f"<tr>{cells}</tr>"]
            for row in rows:
                lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
            body.append(
                f"<table><thead>{lines[0]}</thead><tbody>{''.join(lines[1:])}</tbody></table>"
            )
        else:
            body.append(
                "<p>" + "<br>\n".join(html.escape(line) for line in block.split("\n")) + "</p>"
            )
    head = f'<meta charset="{encoding}">'
    if title is not None:
        head += f"<title>{html.escape(title)}</title>"
    page = (
        f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    return page.encode(encoding)


def make_markdown(
    blocks: Sequence[PdfBlock],
    *,
    setext: bool = False,
    front_matter: Mapping[str, str] | None = None,
) -> bytes:
    """Markdown: ATX headings (``setext`` underlines levels 1 and 2 instead), paragraphs
    separated by blank lines, tables as pipe tables, an optional YAML front matter."""
    parts: list[str] = []
    if front_matter:
        parts.append("---\n" + "".join(f"{k}: {v}\n" for k, v in front_matter.items()) + "---")
    for block in blocks:
        if isinstance(block, Heading):
            level = max(block.level, 1)
            if setext and level <= 2:
                parts.append(f"{block.text}\n{('=' if level == 1 else '-') * len(block.text)}")
            else:
                parts.append(f"{'#' * level} {block.text}")
        elif isinstance(block, Table):
            head, *rows = block.rows
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            parts.append("\n".join(lines))
        else:
            parts.append(block)
    return ("\n\n".join(parts) + "\n").encode()


def make_text(blocks: Sequence[PdfBlock], *, encoding: str = "utf-8", bom: bool = False) -> bytes:
    """Plain text: ``# `` headings, paragraphs separated by blank lines, table rows as lines
    of cells separated by `` | ``; Windows line endings, as most such files have."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * max(block.level, 1)} {block.text}")
        elif isinstance(block, Table):
            parts.append("\n".join(" | ".join(row) for row in block.rows))
        else:
            parts.append(block)
    text = "\r\n\r\n".join(part.replace("\n", "\r\n") for part in parts) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def make_zip(members: Mapping[str, bytes | str]) -> bytes:
    """A zip archive holding ``members`` (name → content)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def make_zip_bomb(unpacked_bytes: int, *, members: int = 1) -> bytes:
    """A small file shaped like a .docx whose ``word/document.xml`` (plus ``members - 1``
    empty parts) unpacks to ``unpacked_bytes`` of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = bytes(2**20)
            left = unpacked_bytes
            while left > 0:
                member.write(block[: min(left, len(block))])
                left -= len(block)
        for number in range(members - 1):
            archive.writestr(f"word/media/part{number}.bin", b"")
    return out.getvalue()


_FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
_FOOTNOTES_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def with_footnote(data: bytes, text: str) -> bytes:
    """The .docx ``data`` with a footnotes part holding one footnote of ``text`` (python-docx
    cannot write footnotes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
        b"</Types>",
        f'<Override PartName="/word/footnotes.xml" ContentType="{_FOOTNOTES_TYPE}"/>'
        "</Types>".encode(),
    )
    members["word/_rels/document.xml.rels"] = members["word/_rels/document.xml.rels"].replace(
        b"</Relationships>",
        f'<Relationship Id="rIdNotes" Type="{_FOOTNOTES_REL}" Target="footnotes.xml"/>'
        "</Relationships>".encode(),
    )
    members["word/footnotes.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:footnotes xmlns:w="{_W}">'
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p>'
        '</w:footnote><w:footnote w:id="1"><w:p><w:r>'
        f"<w:t>{html.escape(text)}</w:t></w:r></w:p></w:footnote></w:footnotes>"
    ).encode()
    return make_zip(members)
