"""Parsing uploaded documents: structure, pages, visible text, and every way a file is refused."""

from __future__ import annotations

import random
import re

import pytest

from egide.errors import (
    DocumentError,
    DocumentTooLarge,
    EncryptedDocument,
    MalformedDocument,
    UnsupportedDocument,
)
from egide.rag.parsing import Limits, ParsedDocument, Section, detect_format, parse
from support.documents import (
    PAGE_BREAK,
    Block,
    Heading,
    PdfBlock,
    Table,
    encrypt_pdf,
    make_docx,
    make_html,
    make_markdown,
    make_pdf,
    make_text,
    make_zip,
    make_zip_bomb,
    split_pages,
    with_footnote,
)

CONVOY = (
    "(DR) Le convoi partira « demain » à l'aube ; le cœur du dispositif, "
    "œuvre de l'état-major, est prêt."
)
REPORT: list[Block] = [
    Heading("Rapport de synthèse logistique", 0),
    "DIFFUSION RESTREINTE",
    Heading("1. Logistique"),
    Heading("1.1 Carburant", 2),
    CONVOY,
    "Les dépôts de Brest et de Toulon disposent de réserves suffisantes pour l'exercice.",
    Table([["Dépôt", "Volume"], ["Brest", "12 000 L"], ["Toulon", "8 500 L"]]),
    PAGE_BREAK,
    Heading("1.2 Maintenance", 2),
    "(NP) The maintenance team reviewed twelve vehicles. Two need new œil-de-bœuf windows!",
    Heading("2. Renseignement"),
    "(DR) Aucune activité inhabituelle n'a été observée près du site « Alpha ».",
]
FLOW: list[PdfBlock] = [block for block in REPORT if not isinstance(block, type(PAGE_BREAK))]
FORMATS = ("pdf", "docx", "html", "markdown", "text")


def build(fmt: str) -> tuple[str, bytes]:
    if fmt == "pdf":
        pages = split_pages(REPORT)
        return "rapport.pdf", make_pdf(pages, header="DIFFUSION RESTREINTE", footer="Page {page}")
    if fmt == "docx":
        data = make_docx(REPORT, header="En-tête : DIFFUSION RESTREINTE", footer="Spécial France")
        return "rapport.docx", data
    if fmt == "html":
        return "rapport.html", make_html(FLOW, title="Rapport — Égide", nav=["Accueil", "Index"])
    if fmt == "markdown":
        return "rapport.md", make_markdown(FLOW)
    return "rapport.txt", make_text(FLOW)


def flat(text: str) -> str:
    return " ".join(text.split())


def section_with(doc: ParsedDocument, needle: str) -> Section:
    return next(s for s in doc.sections if needle in flat(s.text))


@pytest.fixture(scope="module", params=FORMATS)
def report(request: pytest.FixtureRequest) -> tuple[str, ParsedDocument]:
    fmt: str = request.param
    name, data = build(fmt)
    return fmt, parse(name, data)


def test_round_trip_keeps_text_headings_and_pages(report: tuple[str, ParsedDocument]) -> None:
    fmt, doc = report
    assert doc.format == fmt
    convoy = section_with(doc, "Le convoi partira")
    assert convoy.headings[-2:] == ("1. Logistique", "1.1 Carburant")
    maintenance = section_with(doc, "The maintenance team")
    assert maintenance.headings[-2:] == ("1. Logistique", "1.2 Maintenance")
    alpha = section_with(doc, "site « Alpha »")
    assert alpha.headings[-1] == "2. Renseignement"
    assert "1. Logistique" not in alpha.headings
    if fmt in ("pdf", "docx"):
        assert doc.pages == 2
        assert (convoy.page, maintenance.page, alpha.page) == (1, 2, 2)
    else:
        assert doc.pages is None
        assert {s.page for s in doc.sections} == {None}
    words = flat(" ".join(s.text for s in doc.sections) + " " + " ".join(convoy.headings))
    for block in FLOW:
        texts = block.rows if isinstance(block, Table) else [[getattr(block, "text", block)]]
        for row in texts:
            for cell in row:
                assert isinstance(cell, str)
                assert flat(cell) in flat(doc.full_text)
                if not isinstance(block, Heading):
                    assert flat(cell) in words


def test_markings_are_kept_verbatim(report: tuple[str, ParsedDocument]) -> None:
    fmt, doc = report
    convoy = section_with(doc, "Le convoi partira")
    if fmt == "pdf":  # a PDF line wraps where the page ends
        assert flat(CONVOY) in flat(convoy.text)
        assert any(line.startswith("(DR) Le convoi") for line in convoy.text.split("\n"))
    else:
        assert CONVOY in convoy.text
        assert CONVOY in doc.full_text
    assert any(s.text.split("\n")[0] == "DIFFUSION RESTREINTE" for s in doc.sections)
    assert "(NP) The maintenance" in doc.full_text
    assert "« Alpha »" in doc.full_text


def test_pdf_running_header_and_footer_are_in_full_text() -> None:
    _, data = build("pdf")
    doc = parse("rapport.pdf", data)
    assert doc.full_text.count("DIFFUSION RESTREINTE") >= 3  # twice as a header, once as text
    assert "Page 1" in doc.full_text and "Page 2" in doc.full_text
    page_two = [s for s in doc.sections if s.page == 2]
    assert page_two[0].text.startswith("DIFFUSION RESTREINTE")


def test_pdf_title_comes_from_metadata_else_first_heading() -> None:
    pages = [
        [Heading("Plan de soutien"), "Le plan couvre le carburant, les vivres et les munitions."]
    ]
    assert parse("a.pdf", make_pdf(pages, title="Plan 2026")).title == "Plan 2026"
    assert parse("a.pdf", make_pdf(pages)).title == "Plan de soutien"


def test_pdf_without_heading_fonts_has_no_headings() -> None:
    pages = [["Premier paragraphe du mémo.", "1. Point numéroté sans gras", "Fin du mémo."]]
    doc = parse("memo.pdf", make_pdf(pages))
    assert {s.headings for s in doc.sections} == {()}
    assert "1. Point numéroté sans gras" in doc.full_text


def test_pdf_paragraphs_are_separated() -> None:
    pages = [[f"Paragraphe {n} : " + "mot " * 40 + "fin." for n in range(4)]]
    doc = parse("p.pdf", make_pdf(pages))
    paragraphs = doc.sections[0].text.split("\n\n")
    assert len(paragraphs) == 4
    assert all(p.startswith(f"Paragraphe {n} :") for n, p in enumerate(paragraphs))


def test_docx_header_footer_footnote_and_table_are_visible() -> None:
    _, data = build("docx")
    doc = parse("rapport.docx", with_footnote(data, "Source : note (DR) du 3 mai."))
    assert doc.full_text.startswith("En-tête : DIFFUSION RESTREINTE")
    assert "Spécial France" in doc.full_text
    assert "Source : note (DR) du 3 mai." in doc.full_text
    table = section_with(doc, "Brest | 12 000 L")
    assert "Dépôt | Volume\nBrest | 12 000 L\nToulon | 8 500 L" in table.text
    assert doc.title == "Rapport de synthèse logistique"
    assert doc.sections[0].headings == ("Rapport de synthèse logistique",)


def test_docx_french_styles_and_rendered_page_breaks() -> None:
    data = make_docx(REPORT, heading_style="Titre {level}", rendered_page_breaks=True)
    doc = parse("rapport.docx", data)
    assert doc.pages == 2
    maintenance = section_with(doc, "The maintenance team")
    assert maintenance.headings == (
        "Rapport de synthèse logistique",
        "1. Logistique",
        "1.2 Maintenance",
    )
    assert maintenance.page == 2


def test_docx_without_page_breaks_has_no_pages() -> None:
    doc = parse("note.docx", make_docx([Heading("Objet"), "Une seule page.", "Fin."], title="Note"))
    assert doc.pages is None
    assert doc.sections == (Section("Une seule page.\n\nFin.", None, ("Objet",)),)
    assert doc.title == "Note"


def test_html_skips_scripts_keeps_title_and_navigation_outside_sections() -> None:
    data = make_html(FLOW, title="Rapport — Égide", nav=["Accueil"], script="var cle = 'XYZ';")
    doc = parse("page.html", data)
    assert doc.title == "Rapport — Égide"
    assert doc.full_text.startswith("Rapport — Égide\n\nAccueil")
    assert "XYZ" not in doc.full_text
    assert all("Accueil" not in s.text for s in doc.sections)


def test_html_in_a_declared_legacy_charset() -> None:
    data = make_html([Heading("État"), "Côté cœur : « oui »."], encoding="cp1252")
    doc = parse("legacy.htm", data)
    assert doc.sections == (Section("Côté cœur : « oui ».", None, ("État",)),)


def test_html_structure() -> None:
    page = (
        b"<html><body><h2>Niveau deux</h2><p>Un <b>texte</b>\n  en   ligne.</p>"
        b"<ul><li>premier</li><li>second</li></ul><style>p{}</style><h3>Sous-niveau</h3>"
        b"<div>Bloc<br>suite</div><pre>code  verbatim</pre></body></html>"
    )
    doc = parse("s.html", page)
    assert doc.sections == (
        Section("Un texte en ligne.\n\n- premier\n\n- second", None, ("Niveau deux",)),
        Section("Bloc\nsuite\n\ncode  verbatim", None, ("Niveau deux", "Sous-niveau")),
    )


def test_markdown_setext_code_tables_lists_and_front_matter() -> None:
    source = (
        "---\ntitle: Procédure carburant\nauthor: DIRISI\n---\n"
        "Procédure\n=========\n\nIntro avec `code` et [lien](http://x).\n\n"
        "Étapes\n------\n\n- vérifier\n- remplir\n\n```\nif niveau < 10:\n\n    alerte()\n```\n\n"
        "| Dépôt | Volume |\n|---|---|\n| Brest | 12 000 L |\n"
    ).encode()
    doc = parse("proc.markdown", source)
    assert doc.title == "Procédure carburant"
    assert doc.full_text.startswith("title: Procédure carburant")
    assert doc.sections[0] == Section("Intro avec code et lien.", None, ("Procédure",))
    steps = doc.sections[1]
    assert steps.headings == ("Procédure", "Étapes")
    assert "- vérifier\n- remplir" in steps.text
    assert "if niveau < 10:\n\n    alerte()" in steps.text
    assert "Dépôt | Volume\nBrest | 12 000 L" in steps.text


def test_text_encodings_headings_and_paragraphs() -> None:
    doc = parse("n.txt", make_text(FLOW, bom=True))
    assert "\r" not in doc.full_text
    assert not doc.full_text.startswith("\ufeff")
    legacy = parse("n.txt", "Réunion\n=======\n\nCœur « vif ».\r\n\r\nFin.".encode("cp1252"))
    assert legacy.sections == (Section("Cœur « vif ».\n\nFin.", None, ("Réunion",)),)
    plain = parse("n.txt", b"Pas de titre.\nDeuxieme ligne.\n\n\n\nAutre paragraphe.")
    assert plain.sections == (
        Section("Pas de titre.\nDeuxieme ligne.\n\nAutre paragraphe.", None, ()),
    )
    assert plain.title is None


@pytest.mark.parametrize(
    ("filename", "data", "content_type", "expected"),
    [
        ("report.txt", make_pdf([["x"]]), None, "pdf"),
        ("upload", make_docx(["x"]), None, "docx"),
        ("notes.md", b"# x", None, "markdown"),
        ("notes.MARKDOWN", b"# x", None, "markdown"),
        ("page.HTM", b"x", None, "html"),
        ("readme.text", b"x", None, "text"),
        ("upload", b"# x", "text/markdown; charset=utf-8", "markdown"),
        ("upload", b"x", "application/xhtml+xml", "html"),
        ("upload", b"\xef\xbb\xbf  <!DOCTYPE html><p>x", None, "html"),
        ("upload", b"<HTML><body>x", "application/octet-stream", "html"),
        ("upload.csv", "a;b\nété;2".encode(), None, "text"),
    ],
)
def test_detect_format(filename: str, data: bytes, content_type: str | None, expected: str) -> None:
    assert detect_format(filename, data, content_type) == expected


@pytest.mark.parametrize(
    ("filename", "data", "hint"),
    [
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "old Microsoft Office"),
        ("old.doc", b"plain text in a .doc", "old Microsoft Office"),
        ("book.xlsx", make_zip({"xl/workbook.xml": "<w/>"}), "spreadsheet"),
        ("data.bin", make_zip({"xl/workbook.xml": "<w/>"}), "spreadsheet"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(64), "image (PNG)"),
        ("scan.pdf.jpg", b"\xff\xd8\xff\xe0" + bytes(64), "OCR is not supported"),
        ("blob", bytes(range(256)), "binary"),
        ("blob", b"caf\xe9", "binary"),
        ("deck.pptx", b"anything", "presentation"),
        ("letter.rtf", b"{\\rtf1 Bonjour}", "Rich Text"),
    ],
)
def test_unsupported_formats_name_the_file_and_the_supported_ones(
    filename: str, data: bytes, hint: str
) -> None:
    with pytest.raises(UnsupportedDocument) as raised:
        parse(filename, data)
    message = str(raised.value)
    assert message.startswith(filename)
    assert hint in message
    assert "PDF, Word (.docx), HTML, Markdown or plain text" in message


def _refusal(filename: str, data: bytes, error: type[DocumentError], **limits: int) -> str:
    with pytest.raises(error) as raised:
        parse(filename, data, limits=Limits(**limits))
    assert type(raised.value) is error
    message = str(raised.value)
    assert filename.rsplit("/", 1)[-1] in message
    return message


SECRET = "Opération Tramontane"


def test_encrypted_pdf_is_refused() -> None:
    data = make_pdf([[SECRET]], password="motdepasse")
    message = _refusal("secret.pdf", data, EncryptedDocument)
    assert "decrypted" in message
    owner_only = encrypt_pdf(make_pdf([[SECRET]]), user_password="")
    _refusal("restricted.pdf", owner_only, EncryptedDocument)


def test_password_protected_office_file_is_refused() -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "EncryptedPackage".encode("utf-16-le")
    assert "password" in _refusal("protégé.docx", data, EncryptedDocument)


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_truncated_pdf_is_malformed(cut: float) -> None:
    data = make_pdf([[SECRET], ["Page deux."]])
    _refusal("tronque.pdf", data[: int(len(data) * cut)], MalformedDocument)


def test_random_bytes_named_pdf_are_malformed() -> None:
    noise = random.Random(7).randbytes(4000)
    _refusal("rapport.pdf", noise, MalformedDocument)
    _refusal("rapport.pdf", b"%PDF-1.7\n" + noise, MalformedDocument)


def test_scanned_pdf_without_text_is_malformed() -> None:
    assert "OCR" in _refusal("scan.pdf", make_pdf([[], []]), MalformedDocument)


def test_too_many_pages() -> None:
    data = make_pdf([[f"Page {n}."] for n in range(5)])
    assert "5 pages" in _refusal("gros.pdf", data, DocumentTooLarge, max_pages=4)
    assert parse("gros.pdf", data, limits=Limits(max_pages=5)).pages == 5


def test_oversized_file_is_refused_before_parsing() -> None:
    message = _refusal("gros.pdf", b"%PDF-" + bytes(3 * 2**20), DocumentTooLarge, max_bytes=2**20)
    assert "3 MiB" in message and "1 MiB" in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_too_much_text(fmt: str) -> None:
    name, data = build(fmt)
    _refusal(name, data, DocumentTooLarge, max_chars=200)


def test_docx_zip_bomb_is_refused_before_parsing() -> None:
    bomb = make_zip_bomb(41 * 2**20)  # 41 MiB of zeros in about 40 KiB
    assert len(bomb) < 100_000
    message = _refusal("bombe.docx", bomb, DocumentTooLarge, max_unzipped_bytes=40 * 2**20)
    assert "41 MiB" in message and "40 MiB" in message
    _refusal("membres.docx", make_zip_bomb(10, members=6000), DocumentTooLarge)


def test_docx_that_is_another_zip_is_unsupported() -> None:
    data = make_zip({"notes/readme.txt": SECRET, "mimetype": "application/zip"})
    assert "not a Word document" in _refusal("faux.docx", data, UnsupportedDocument)


@pytest.mark.parametrize("cut", [0.3, 0.8])
def test_truncated_docx_is_malformed(cut: float) -> None:
    data = make_docx([SECRET])
    _refusal("abime.docx", data[: int(len(data) * cut)], MalformedDocument)


def test_docx_with_broken_xml_is_malformed() -> None:
    data = make_zip({"[Content_Types].xml": "<Types", "word/document.xml": "<w:document"})
    _refusal("casse.docx", data, MalformedDocument)


def test_binary_text_file_is_unsupported() -> None:
    _refusal("notes.txt", b"Bonjour\x00\x01\x02 le monde", UnsupportedDocument)
    _refusal("notes.md", b"\x81\x8d\x8f\x90\x9d" * 20, UnsupportedDocument)


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("vide.txt", b""),
        ("blanc.md", b" \n\r\n\t"),
        ("vide.pdf", b""),
        ("vide.html", b"<html><head><title>T</title></head><body> </body></html>"),
        ("vide.docx", make_docx([], header="En-tête seul")),
        ("titres.md", b"# Titre\n\n## Sous-titre\n"),
    ],
)
def test_empty_documents_contain_no_text(filename: str, data: bytes) -> None:
    message = _refusal(filename, data, MalformedDocument)
    assert "no text" in message or "empty" in message


def test_error_messages_never_quote_the_document() -> None:
    attempts = [
        ("a.pdf", make_pdf([[SECRET]], password="x"), Limits()),
        ("b.pdf", make_pdf([[SECRET]] * 3), Limits(max_pages=2)),
        ("c.txt", (SECRET * 50).encode(), Limits(max_chars=100)),
        ("d.docx", make_docx([SECRET] * 30)[:900], Limits()),
        ("e.md", SECRET.encode() + b"\x00", Limits()),
    ]
    for name, data, limits in attempts:
        with pytest.raises(DocumentError) as raised:
            parse(name, data, limits=limits)
        assert "Tramontane" not in str(raised.value)


def test_file_name_in_messages_is_reduced_to_a_safe_base_name() -> None:
    with pytest.raises(MalformedDocument) as raised:
        parse("C:\\Users\\agent\\rapport\x07.pdf", b"not a pdf")
    assert str(raised.value).startswith("rapport.pdf ")


@pytest.mark.parametrize("fmt", ["pdf", "docx"])
def test_damaged_files_raise_only_document_errors(fmt: str) -> None:
    name, data = build(fmt)
    rng = random.Random(fmt)
    for _ in range(25):
        damaged = bytearray(data)
        start = rng.randrange(len(data))
        for offset in range(rng.randint(1, 64)):
            if start + offset < len(damaged):
                damaged[start + offset] = rng.randrange(256)
        try:
            doc = parse(name, bytes(damaged))
        except DocumentError as exc:
            assert re.match(r"rapport\.(pdf|docx)\b", str(exc))
        else:
            assert doc.sections
