"""Word (.docx): the zip is checked for bombs before anything is parsed, then the body is read in
order (headings from paragraph styles, tables as rows) with pages counted from page breaks, and
headers, footers, notes and comments are kept as text around the body."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import replace

import docx
from docx.oxml.ns import qn
from docx.oxml.parser import parse_xml

from egide.errors import (
    DocumentError,
    DocumentTooLarge,
    MalformedDocument,
    UnsupportedDocument,
)
from egide.rag.formats import SUPPORTED, Extraction, display_name
from egide.rag.formats.wordml import W_PPR, W_RENDERED, W_VAL, Element, Walker

MAX_MEMBERS = 5_000
_HEADING_NAME = re.compile(r"^(?:heading|titre)\s*([1-9])$", re.I)
_TITLE_NAME = re.compile(r"^(?:title|titre)$", re.I)
_LEADING_PART = re.compile(r"^/word/header\d*\.xml$")
_TRAILING_PART = re.compile(r"^/word/(?:footer\d*|footnotes|endnotes|comments)\.xml$")


def check_zip(filename: str, data: bytes, max_unzipped_bytes: int) -> None:
    """Refuse a zip that would inflate beyond the limit, or that is not a Word document."""
    name = display_name(filename)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise MalformedDocument(
            f"{name} is damaged (its zip structure cannot be read): "
            "open it in Word and save it again as .docx"
        ) from exc
    if len(members) > MAX_MEMBERS:
        raise DocumentTooLarge(
            f"{name} holds {len(members)} archive members (the limit is {MAX_MEMBERS}): "
            "save it again from Word, or split it"
        )
    unzipped = sum(member.file_size for member in members)
    if unzipped > max_unzipped_bytes:
        raise DocumentTooLarge(
            f"{name} would unpack to {unzipped // 2**20} MiB, above the "
            f"{max_unzipped_bytes // 2**20} MiB limit: remove embedded media or split the document"
        )
    if not any(member.filename == "word/document.xml" for member in members):
        raise UnsupportedDocument(
            f"{name} is a zip archive but not a Word document: upload it as {SUPPORTED}"
        )


def extract(filename: str, data: bytes, max_unzipped_bytes: int) -> Extraction:
    check_zip(filename, data, max_unzipped_bytes)
    name = display_name(filename)
    try:
        return _read(data)
    except DocumentError:
        raise
    except ValueError as exc:
        if "content type" not in str(exc):
            raise MalformedDocument(
                f"{name} is damaged and cannot be read: open it in Word and save it again as .docx"
            ) from exc
        raise UnsupportedDocument(
            f"{name} is a Word template or macro-enabled document: "
            "save it from Word as a plain document (.docx)"
        ) from exc
    except Exception as exc:  # the parser's own failure must not escape
        raise MalformedDocument(
            f"{name} is damaged and cannot be read: open it in Word and save it again as .docx"
        ) from exc


def _read(data: bytes) -> Extraction:
    document = docx.Document(io.BytesIO(data))
    body = document.element.body
    rendered = next(body.iter(W_RENDERED), None) is not None
    out = Extraction(title=(document.core_properties.title or "").strip() or None)
    walker = Walker(out, rendered=rendered, heading_level=_Styles(document.styles.element).level)
    walker.blocks(body)
    if walker.breaks:
        out.pages = walker.page
    else:
        out.blocks = [replace(block, page=None) for block in out.blocks]
    for part in document.part.package.iter_parts():
        partname = str(part.partname)
        leading = _LEADING_PART.match(partname)
        if leading or _TRAILING_PART.match(partname):
            text = _plain_text(parse_xml(part.blob))
            target = out.leading if leading else out.trailing
            if text and text not in target:
                target.append(text)
    return out


def _plain_text(root: Element) -> str:
    inner = Extraction()
    Walker(inner, rendered=False, heading_level=lambda _: None).blocks(root)
    return "\n".join(block.text for block in inner.blocks)


class _Styles:
    """Heading levels of paragraph styles: by name ("Heading 2", "Titre 2", "Title"), by
    outline level, or inherited from the style a style is based on."""

    def __init__(self, styles: Element) -> None:
        self.names: dict[str, str] = {}
        self.outline: dict[str, int] = {}
        self.based_on: dict[str, str] = {}
        for style in styles.iter(qn("w:style")):
            style_id = style.get(qn("w:styleId"))
            if style_id is None:
                continue
            name = style.find(qn("w:name"))
            self.names[style_id] = name.get(W_VAL, "") if name is not None else ""
            based = style.find(qn("w:basedOn"))
            if based is not None and based.get(W_VAL):
                self.based_on[style_id] = based.get(W_VAL)
            outline = style.find(f"{W_PPR}/{qn('w:outlineLvl')}")
            if outline is not None and (outline.get(W_VAL) or "").isdigit():
                self.outline[style_id] = int(outline.get(W_VAL))

    def level(self, p: Element) -> int | None:
        outline = p.find(f"{W_PPR}/{qn('w:outlineLvl')}")
        if outline is not None and (outline.get(W_VAL) or "").isdigit():
            value = int(outline.get(W_VAL))
            return value + 1 if value < 9 else None
        style = p.find(f"{W_PPR}/{qn('w:pStyle')}")
        return self.style_level(style.get(W_VAL) if style is not None else None)

    def style_level(self, style_id: str | None) -> int | None:
        for _ in range(10):  # a chain of "based on" styles, never a cycle
            if style_id is None:
                return None
            name = self.names.get(style_id, style_id).strip()
            heading = _HEADING_NAME.match(name) or _HEADING_NAME.match(style_id)
            if heading:
                return int(heading.group(1))
            if _TITLE_NAME.match(name) or _TITLE_NAME.match(style_id):
                return 0
            if style_id in self.outline:
                value = self.outline[style_id]
                return value + 1 if value < 9 else None
            style_id = self.based_on.get(style_id)
        return None
