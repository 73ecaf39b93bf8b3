"""Plain text: UTF-8 (cp1252 as a fallback), paragraphs at blank lines, and ``# `` or underlined
(``===`` / ``---``) headings when the file uses them."""

from __future__ import annotations

import codecs
import re

from egide.errors import UnsupportedDocument
from egide.rag.formats import SUPPORTED, Extraction, clean, display_name

_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_UNDERLINE = re.compile(r"^(=+|-+)[ \t]*$")
_ALLOWED_CONTROLS = frozenset("\t\n\r\f")


def decode(filename: str, data: bytes, fallback: str = "cp1252") -> str:
    """Decode text bytes: UTF-8 with or without BOM, UTF-16 with a BOM, else ``fallback``
    when the result is printable. Binary data raises :class:`UnsupportedDocument`."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _binary(filename) from None
    if b"\x00" in data:
        raise _binary(filename)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode(fallback)
    except (UnicodeDecodeError, LookupError):
        raise _binary(filename) from None
    if any(not ch.isprintable() and ch not in _ALLOWED_CONTROLS for ch in text):
        raise _binary(filename)
    return text


def _binary(filename: str) -> UnsupportedDocument:
    return UnsupportedDocument(
        f"{display_name(filename)} is not a text file (it holds binary data or an unknown "
        f"character encoding): upload it as {SUPPORTED}, with text saved as UTF-8"
    )


def extract(filename: str, data: bytes) -> Extraction:
    out = Extraction()
    lines = clean(decode(filename, data)).split("\n")
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.paragraph("\n".join(paragraph))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        atx = _ATX.match(line)
        underline = _UNDERLINE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if atx:
            flush()
            out.heading(atx.group(2), len(atx.group(1)))
        elif underline and not paragraph and line.strip() and len(underline.group(1)) >= 3:
            out.heading(line, 1 if underline.group(1)[0] == "=" else 2)
            i += 1
        elif line.strip():
            paragraph.append(line)
        else:
            flush()
        i += 1
    flush()
    return out
