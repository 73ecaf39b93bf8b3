"""PDF through pypdf: text page by page, with paragraphs and headings recovered from the layout
(see :mod:`egide.rag.formats.pdf_layout`). Encrypted files are refused, even those that open
without a password: an upload must be a decrypted copy."""

from __future__ import annotations

import io
from collections import defaultdict

from pypdf import PdfReader
from pypdf.errors import LimitReachedError

from egide.errors import DocumentTooLarge, EncryptedDocument, MalformedDocument
from egide.rag.formats import Extraction, display_name
from egide.rag.formats.pdf_layout import (
    Line,
    LineReader,
    body_size,
    headings,
    lay_out,
    running_lines,
)


def extract(filename: str, data: bytes, *, max_pages: int, max_chars: int) -> Extraction:
    name = display_name(filename)
    damaged = (
        f"{name} is damaged or truncated and cannot be read as PDF: "
        "upload it again, or export it to PDF again from the source document"
    )
    if b"%PDF-" not in data[:1024]:
        raise MalformedDocument(damaged)
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except Exception as exc:  # the parser's own failure must not escape
        raise MalformedDocument(damaged) from exc
    if encrypted:
        raise EncryptedDocument(
            f"{name} is password-protected or encrypted: remove the protection "
            "(save or print it to a new PDF without a password) and upload the decrypted copy"
        )
    try:
        count = len(reader.pages)
    except Exception as exc:
        raise MalformedDocument(damaged) from exc
    if count > max_pages:
        raise DocumentTooLarge(
            f"{name} has {count} pages, above the limit of {max_pages}: split it into smaller files"
        )
    pages = _read_pages(name, reader, max_chars)
    if not any(line.text.strip() for lines in pages for line in lines):
        raise MalformedDocument(
            f"{name} contains no text: it looks like scanned images, and OCR is not supported; "
            "upload a PDF with selectable text"
        )
    body = body_size(pages)
    running = running_lines(pages, body)
    by_page: defaultdict[int, dict[int, int]] = defaultdict(dict)
    for (page, line), level in headings(pages, body, running).items():
        by_page[page][line] = level
    out = Extraction(pages=count, title=_title(reader))
    for index, lines in enumerate(pages):
        lay_out(out, index + 1, lines, by_page[index], running)
    return out


def _read_pages(name: str, reader: PdfReader, max_chars: int) -> list[list[Line]]:
    pages: list[list[Line]] = []
    chars = 0
    for number, page in enumerate(reader.pages, start=1):
        visitor = LineReader()
        try:
            text = page.extract_text(visitor_text=visitor)
        except LimitReachedError as exc:
            raise DocumentTooLarge(
                f"{name}: page {number} holds more content than can be extracted safely: "
                "split the document or print it to a new PDF"
            ) from exc
        except Exception as exc:  # the parser's own failure must not escape
            raise MalformedDocument(
                f"{name}: page {number} is damaged and cannot be read: "
                "export the document to PDF again"
            ) from exc
        chars += len(text)
        if chars > max_chars:
            raise DocumentTooLarge(
                f"{name} holds more than {max_chars} characters of text (the limit): "
                "split it into smaller files"
            )
        same = visitor.text == text
        pages.append(visitor.lines if same else [Line(part) for part in text.split("\n")])
    return pages


def _title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # a damaged information dictionary only loses the title
        return None
    return " ".join(str(title).split()) or None if title else None
