"""Document parsing for knowledge bases: recognise the format, extract the text with its structure
(pages, heading paths), and refuse what cannot be read safely — with a message that names the file
and says what to do, and never quotes the document."""

from __future__ import annotations

from dataclasses import dataclass

from egide.errors import DocumentTooLarge, MalformedDocument
from egide.rag.formats import Extraction, detection, display_name
from egide.rag.formats import docx as docx_format
from egide.rag.formats import html as html_format
from egide.rag.formats import markdown as markdown_format
from egide.rag.formats import pdf as pdf_format
from egide.rag.formats import text as text_format


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path on one page."""

    text: str
    page: int | None  # 1-based; None for formats without pages
    headings: tuple[str, ...]  # heading path, outermost first


@dataclass(frozen=True)
class ParsedDocument:
    format: str  # "pdf" | "docx" | "html" | "markdown" | "text"
    mime_type: str
    sections: tuple[Section, ...]
    pages: int | None  # number of pages (PDF; DOCX when page breaks are known), else None
    title: str | None
    full_text: str  # everything a reader of the file sees, running headers and notes included


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 2**20
    max_pages: int = 2000
    max_chars: int = 5_000_000  # extracted text
    max_unzipped_bytes: int = 200 * 2**20  # DOCX is a zip: zip bombs are refused before parsing


def detect_format(filename: str, data: bytes, content_type: str | None = None) -> str:
    """The document format ("pdf", "docx", "html", "markdown" or "text"): by magic bytes, then
    extension, then content type, then sniffing. Raises :class:`UnsupportedDocument` (or
    :class:`EncryptedDocument` for a password-protected Office file) for anything else."""
    return detection.detect(filename, data, content_type)


def parse(
    filename: str, data: bytes, *, content_type: str | None = None, limits: Limits = Limits()
) -> ParsedDocument:
    """Parse an uploaded document into sections (text under one heading path on one page)."""
    name = display_name(filename)
    if len(data) > limits.max_bytes:
        raise DocumentTooLarge(
            f"{name} is {_mib(len(data))} MiB, above the {_mib(limits.max_bytes)} MiB limit: "
            "split it into smaller files"
        )
    if not data.strip():
        raise MalformedDocument(f"{name} is empty: it contains no text; upload the right file")
    fmt = detect_format(filename, data, content_type)
    if fmt == "pdf":
        extraction = pdf_format.extract(
            filename, data, max_pages=limits.max_pages, max_chars=limits.max_chars
        )
    elif fmt == "docx":
        extraction = docx_format.extract(filename, data, limits.max_unzipped_bytes)
    elif fmt == "html":
        extraction = html_format.extract(filename, data)
    elif fmt == "markdown":
        extraction = markdown_format.extract(filename, data)
    else:
        extraction = text_format.extract(filename, data)
    return _assemble(name, fmt, extraction, limits)


def _assemble(name: str, fmt: str, extraction: Extraction, limits: Limits) -> ParsedDocument:
    visible = [*extraction.leading, *(b.text for b in extraction.blocks), *extraction.trailing]
    if sum(len(text) for text in visible) > limits.max_chars:
        raise DocumentTooLarge(
            f"{name} holds more than {limits.max_chars} characters of text (the limit): "
            "split it into smaller files"
        )
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    title = extraction.title
    for block in extraction.blocks:
        if block.level is not None:
            while path and path[-1][0] >= block.level:
                path.pop()
            path.append((block.level, block.text))
            if title is None and block.level <= 1:
                title = block.text
            continue
        headings = tuple(text for _, text in path)
        last = sections[-1] if sections else None
        if last is not None and last.page == block.page and last.headings == headings:
            sections[-1] = Section(f"{last.text}\n\n{block.text}", block.page, headings)
        else:
            sections.append(Section(block.text, block.page, headings))
    if not sections:
        raise MalformedDocument(
            f"{name} contains no text (only headings, headers or nothing at all): "
            "check that the right file was uploaded"
        )
    return ParsedDocument(
        format=fmt,
        mime_type=detection.MIME_TYPES[fmt],
        sections=tuple(sections),
        pages=extraction.pages,
        title=title,
        full_text="\n\n".join(visible),
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")
