"""Recognising a document's format from its bytes, name and declared content type, and naming
what it is when it is not one Égide reads."""

from __future__ import annotations

import io
import os
import zipfile

from egide.errors import EncryptedDocument, UnsupportedDocument
from egide.rag.formats import SUPPORTED, display_name

MIME_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html",
    "markdown": "text/markdown",
    "text": "text/plain",
}
_EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
}
_CONTENT_TYPES = {
    "application/xhtml+xml": "html",
    "text/x-markdown": "markdown",
    **{mime: fmt for fmt, mime in MIME_TYPES.items()},
}
_WORD_PROCESSOR = "another word-processor format: save it as .docx"
_OLD_OFFICE = "an old Microsoft Office file (.doc, .xls or .ppt): save it as .docx or PDF"
_UNSUPPORTED_EXTENSIONS = {
    **dict.fromkeys((".doc", ".dot", ".xls", ".ppt"), _OLD_OFFICE),
    **dict.fromkeys((".xlsx", ".xlsm", ".ods"), "a spreadsheet: export it as PDF"),
    **dict.fromkeys((".pptx", ".odp"), "a presentation: export it as PDF"),
    **dict.fromkeys((".odt", ".rtf", ".docm", ".dotx"), _WORD_PROCESSOR),
}
_MAGIC = (
    (b"\x89PNG", "an image (PNG): OCR is not supported, upload the text itself"),
    (b"\xff\xd8\xff", "an image (JPEG): OCR is not supported, upload the text itself"),
    (b"GIF8", "an image (GIF): OCR is not supported, upload the text itself"),
    (b"II*\x00", "an image (TIFF): OCR is not supported, upload the text itself"),
    (b"MM\x00*", "an image (TIFF): OCR is not supported, upload the text itself"),
    (b"{\\rtf", "a Rich Text (RTF) document: save it as .docx"),
    (b"\x1f\x8b", "a compressed archive: upload the documents one by one"),
    (b"7z\xbc\xaf", "a compressed archive: upload the documents one by one"),
    (b"Rar!", "a compressed archive: upload the documents one by one"),
    (b"\x7fELF", "a program, not a document"),
)
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def detect(filename: str, data: bytes, content_type: str | None = None) -> str:
    """The document format: by magic bytes, then extension, then content type, then sniffing.
    Raises :class:`UnsupportedDocument` (or :class:`EncryptedDocument` for a password-protected
    Office file) when it is none of the supported formats."""
    name = display_name(filename)
    extension = os.path.splitext(filename.strip().lower())[1]
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_format(name, data, extension)
    if data.startswith(_OLE):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise EncryptedDocument(
                f"{name} is a password-protected Office document: remove the password in Word "
                "and upload it again as .docx"
            )
        raise _unsupported(name, _OLD_OFFICE)
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise _unsupported(name, what)
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    if extension in _UNSUPPORTED_EXTENSIONS:
        raise _unsupported(name, _UNSUPPORTED_EXTENSIONS[extension])
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _CONTENT_TYPES:
        return _CONTENT_TYPES[mime]
    return _sniff(name, data)


def _zip_format(name: str, data: bytes, extension: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        if extension == ".docx":
            return "docx"  # damaged: the Word reader says so
        raise _unsupported(name, "a damaged zip archive") from None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        raise _unsupported(name, "a spreadsheet: export it as PDF")
    if "ppt/presentation.xml" in names:
        raise _unsupported(name, "a presentation: export it as PDF")
    if "content.xml" in names:
        raise _unsupported(name, "an OpenDocument file: save it as .docx or PDF")
    if extension == ".docx":
        raise _unsupported(name, "a zip archive but not a Word document: check the file")
    raise _unsupported(name, "a zip archive: upload the documents one by one")


def _sniff(name: str, data: bytes) -> str:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text"
    raise _unsupported(name, "not a document Égide recognises (binary data or unknown encoding)")


def _unsupported(name: str, what: str) -> UnsupportedDocument:
    return UnsupportedDocument(f"{name} is {what}. Supported formats: {SUPPORTED}.")
