"""Spillage scanner: a generated corpus of markings to detect, and prose to leave alone."""

from __future__ import annotations

import re

import pytest

from egide.security.labels import Clearance, Label, bottom
from egide.security.levels import FRENCH, NATO, LevelScheme, strip_accents
from egide.security.spillage import check_input, check_output, scan

SF = frozenset({"FRA"})

# (template, is_own_line). Every template surrounds the marking with canary words that
# must never appear in a Finding's reason.
INLINE = [
    "Le dossier ZEPHYRIN-4821 porte la mention {m} et sera archivé par KALIMBA.",
    "Please summarise the ZEPHYRIN-4821 memo, it is marked {m} according to KALIMBA.",
    "Objet : relève ZEPHYRIN-4821 — {m} — transmis par KALIMBA",
]
OWN_LINE = [
    "Rapport ZEPHYRIN-4821\n{m}\nRédigé par KALIMBA, fin du message.",
    "Subject: ZEPHYRIN-4821 logistics\n\n  {m}  \nDrafted by KALIMBA.",
]
CANARIES = ("ZEPHYRIN", "4821", "KALIMBA", "Rapport", "logistics", "archivé", "summarise")


def spellings(name: str) -> set[str]:
    """Accents kept and stripped, spaces, double spaces, hyphens and a line break."""
    out = set()
    for base in {name, strip_accents(name)}:
        out.add(base)
        if " " in base:
            out |= {base.replace(" ", "  "), base.replace(" ", "-"), base.replace(" ", "\n")}
    return out


def generate(scheme: LevelScheme) -> list[tuple[str, Label]]:
    cases: dict[str, Label] = {}
    for level in scheme.levels:
        names = {level.name_fr, level.name_en}
        names |= {a for a in level.aliases if len(a.replace(" ", "")) > 3}
        for name in names:
            for spelled in spellings(name):
                caveats = [("", None, ""), (" SPÉCIAL FRANCE", SF, ""), (" // ALPHA", None, "A")]
                for suffix, rel, comps in caveats:
                    label = Label(level, frozenset({"ALPHA"} if comps else ()), rel)
                    marking = spelled.upper() + suffix
                    for template in INLINE:
                        cases[template.format(m=marking)] = label
                    if "\n" not in spelled:
                        for template in OWN_LINE:
                            cases[template.format(m=spelled.title() + suffix.lower())] = label
                            cases[template.format(m=spelled.lower() + suffix)] = label
        code = level.code
        portions = [
            (f"({code})", Label(level)),
            (f"( {code} )", Label(level)),
            (f"({code}//SF)", Label(level, frozenset(), SF)),
            (f"({code.lower()}//sf)", Label(level, frozenset(), SF)),
            (f"({code}//ALPHA/BRAVO)", Label(level, frozenset({"ALPHA", "BRAVO"}))),
            (f"{code}-SF", Label(level, frozenset(), SF)),
            (f"{code}//ALPHA", Label(level, frozenset({"ALPHA"}))),
            (f"{code} // REL TO FRA, DEU", Label(level, frozenset(), frozenset({"FRA", "DEU"}))),
        ]
        for marking, label in portions:
            for template in INLINE:
                cases[template.format(m=marking)] = label
    return list(cases.items())


FRENCH_CORPUS = generate(FRENCH)
NATO_CORPUS = generate(NATO)

BENIGN = [
    "the secret of good bread is a long fermentation",
    "Le secret d'une bonne sauce, c'est la patience.",
    "Dr. Martin will see you at 10.",
    "Rendez-vous avec le Dr Martin, DR. MARTIN confirmera.",
    "Nous avons établi une liste restreinte de candidats.",
    "La diffusion restreinte du rapport a été décidée hier.",
    "Plan S is a funding policy; so is plan NP.",
    "Install it with NPM, then run INPUT and SNP checks.",
    "Pick the file(s) you want, then the option (s) or (t).",
    "The meeting (see Dr. Martin) is moved.",
    "The recipe (secret) stays in the family.",
    "top secret plans for the birthday party",
    "Top secret recipe",
    "Secret Santa",
    "Les secrets de famille sont bien gardés.",
    "SECRETS and SECRETARY are not markings, nor SECRETARIAT.",
    "TS 2 arrives at 14:00 with the DR team and the S team.",
    "Put the CD-ROM and the SD card in the drawer; TSD is a format.",
    "We flew over the SF Bay area.",
    "Spécial France",
    "SF",
    "Le NATO summit a lieu à Bruxelles.",
    "The U.S. Navy and the R.N. met.",
    "Serial S/N 123-456, part DR-45.",
    "il est très secret sur ses projets",
    "Elle reste confidentielle sur ce sujet défense.",
    "(Dr. Martin)",
    "Music (CD) and video (DVD).",
    "Restreinte à trois personnes, la réunion est annulée.",
    "A secret-ish plan with NS records and a CTS scan.",
    "Unclassified is a word we use in lowercase: unclassified.",
    "Non, protégé par un mot de passe.",
    "Page (1) of (2); see (a) and (b).",
]


def test_the_corpus_is_big_enough() -> None:
    assert len(FRENCH_CORPUS) >= 200
    assert len(BENIGN) >= 30


@pytest.mark.parametrize("scheme", [FRENCH, NATO], ids=["fr", "nato"])
def test_every_generated_marking_is_found_with_its_label(scheme: LevelScheme) -> None:
    corpus = FRENCH_CORPUS if scheme is FRENCH else NATO_CORPUS
    wrong = []
    for text, expected in corpus:
        found = scan(text, scheme)
        if [m.label for m in found] != [expected]:
            wrong.append((text, expected, found))
    assert not wrong, wrong[:5]


def test_markings_above_the_working_label_are_refused_on_input() -> None:
    for text, expected in FRENCH_CORPUS:
        below = max(expected.level.rank - 1, 0)
        working = Label(FRENCH.levels[below])
        findings = check_input(text, working)
        above = (
            expected.level.rank > below
            or expected.releasable_to is not None
            or bool(expected.compartments)
        )
        assert bool(findings) == above, text
        assert check_input(text, expected) == []
        if expected.level.rank > 0:
            assert check_input(text, bottom(FRENCH))


def test_markings_above_the_clearance_are_withheld_on_output() -> None:
    for text, expected in FRENCH_CORPUS:
        cleared = Clearance(expected.level, expected.compartments, "FRA")
        assert check_output(text, cleared) == [], text
        if expected.level.rank > 0:
            low = Clearance(FRENCH.levels[expected.level.rank - 1], frozenset({"ALPHA", "BRAVO"}))
            assert len(check_output(text, low)) == 1, text
        if expected.releasable_to is not None:
            german = Clearance(FRENCH.top, frozenset({"ALPHA", "BRAVO"}), "DEU")
            assert check_output(text, german) != [] or "DEU" in expected.releasable_to


@pytest.mark.parametrize("text", BENIGN)
def test_prose_is_not_a_marking(text: str) -> None:
    assert scan(text, FRENCH) == []
    assert scan(text, NATO) == []


def test_reasons_never_quote_the_text() -> None:
    clearance = Clearance(FRENCH.bottom, frozenset(), "DEU")
    for text, _ in FRENCH_CORPUS:
        findings = check_input(text, bottom(FRENCH)) + check_output(text, clearance)
        for finding in findings:
            surrounding = text[: finding.start] + " " + text[finding.end :]
            for word in re.findall(r"\w{5,}", surrounding):
                assert word.lower() not in finding.reason.lower(), (word, finding.reason)
            for canary in CANARIES:
                assert canary.lower() not in finding.reason.lower()
            assert "ALPHA" not in finding.reason and "BRAVO" not in finding.reason
            assert f"line {finding.line}" in finding.reason
            assert f"{finding.start}-{finding.end}" in finding.reason
            assert finding.label.level.code in finding.reason


def test_findings_locate_the_marking() -> None:
    text = "ligne un\nligne deux avec TRÈS SECRET // ALPHA au milieu\n(S//SF) fin"
    findings = check_input(text, bottom(FRENCH))
    assert [(f.line, f.column) for f in findings] == [(2, 17), (3, 1)]
    assert text[findings[0].start : findings[0].end] == "TRÈS SECRET // ALPHA"
    assert text[findings[1].start : findings[1].end] == "(S//SF)"
    assert findings[0].label == Label(FRENCH.level("TS"), frozenset({"ALPHA"}))
    assert "compartment" in findings[0].reason or "level" in findings[0].reason


def test_several_markings_and_decomposed_accents() -> None:
    text = "CONFIDENTIEL DE\u0301FENSE puis SECRET-DEFENSE puis (DR) et NON PROTÉGÉ."
    assert [m.label.level.code for m in scan(text, FRENCH)] == ["S", "TS", "DR", "NP"]
    assert [f.label.level.code for f in check_input(text, Label(FRENCH.level("S")))] == ["TS"]
