"""Parsing and rendering markings, French and English, banner and portion forms."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egide.errors import MarkingError
from egide.security.labels import Label
from egide.security.levels import FRENCH, NATO, LevelScheme
from egide.security.markings import parse_marking, render_banner, render_portion

FRA = frozenset({"FRA"})


def fr(code: str, comps: str = "", rel: str | None = None) -> Label:
    return lab(FRENCH, code, comps, rel)


def nato(code: str, comps: str = "", rel: str | None = None) -> Label:
    return lab(NATO, code, comps, rel)


def lab(scheme: LevelScheme, code: str, comps: str, rel: str | None) -> Label:
    rels = None if rel is None else frozenset(rel.split())
    return Label(scheme.level(code), frozenset(comps.split()), rels)


FRENCH_TABLE = [
    ("NON PROTÉGÉ", fr("NP")),
    ("NON PROTEGE", fr("NP")),
    ("non protégé", fr("NP")),
    ("Non-Protégé", fr("NP")),
    ("NP", fr("NP")),
    ("(NP)", fr("NP")),
    ("UNCLASSIFIED", fr("NP")),
    ("DIFFUSION RESTREINTE", fr("DR")),
    ("Diffusion Restreinte", fr("DR")),
    ("diffusion-restreinte", fr("DR")),
    ("DIFFUSION   RESTREINTE", fr("DR")),
    ("(DR)", fr("DR")),
    ("DR", fr("DR")),
    ("RESTRICTED", fr("DR")),
    ("( DR )", fr("DR")),
    ("[DR]", fr("DR")),
    ("DR-SF", fr("DR", rel="FRA")),
    ("DIFFUSION RESTREINTE SPÉCIAL FRANCE", fr("DR", rel="FRA")),
    ("SECRET", fr("S")),
    ("Secret", fr("S")),
    ("(S)", fr("S")),
    ("S", fr("S")),
    ("SECRET SPÉCIAL FRANCE", fr("S", rel="FRA")),
    ("SECRET SPECIAL FRANCE", fr("S", rel="FRA")),
    ("Secret Spécial-France", fr("S", rel="FRA")),
    ("S-SF", fr("S", rel="FRA")),
    ("S SF", fr("S", rel="FRA")),
    ("(S//SF)", fr("S", rel="FRA")),
    ("(s//sf)", fr("S", rel="FRA")),
    ("S // SF", fr("S", rel="FRA")),
    ("S/SF", fr("S", rel="FRA")),
    ("SECRET // SPECIAL FRANCE", fr("S", rel="FRA")),
    ("CONFIDENTIEL DÉFENSE", fr("S")),
    ("CONFIDENTIEL DEFENSE", fr("S")),
    ("Confidentiel-Défense", fr("S")),
    ("CD", fr("S")),
    ("(CD)", fr("S")),
    ("CONFIDENTIAL DEFENCE", fr("S")),
    ("CONFIDENTIEL DÉFENSE SPÉCIAL FRANCE", fr("S", rel="FRA")),
    ("SECRET DÉFENSE", fr("TS")),
    ("SECRET DEFENSE", fr("TS")),
    ("secret-défense", fr("TS")),
    ("SD", fr("TS")),
    ("TRÈS SECRET DÉFENSE", fr("TS")),
    ("TSD", fr("TS")),
    ("TRÈS SECRET", fr("TS")),
    ("TRES SECRET", fr("TS")),
    ("très secret", fr("TS")),
    ("Très-Secret", fr("TS")),
    ("TOP SECRET", fr("TS")),
    ("TS", fr("TS")),
    ("(TS)", fr("TS")),
    ("TRÈS SECRET // COMPARTMENT-NAME", fr("TS", "COMPARTMENT-NAME")),
    ("TRES SECRET//ALPHA/BRAVO", fr("TS", "ALPHA BRAVO")),
    ("TS//ALPHA/BRAVO", fr("TS", "ALPHA BRAVO")),
    ("(TS//ALPHA, BRAVO)", fr("TS", "ALPHA BRAVO")),
    ("TS // alpha // bravo", fr("TS", "ALPHA BRAVO")),
    ("TRÈS SECRET SPÉCIAL FRANCE // ALPHA", fr("TS", "ALPHA", "FRA")),
    ("(TS//ALPHA//SF)", fr("TS", "ALPHA", "FRA")),
    ("SECRET // REL TO FRA, DEU", fr("S", rel="FRA DEU")),
    ("SECRET REL TO FRA, DEU", fr("S", rel="FRA DEU")),
    ("SECRET // REL FRA DEU", fr("S", rel="FRA DEU")),
    ("S // REL FRA/DEU/GBR", fr("S", rel="FRA DEU GBR")),
    ("SECRET // RELEASABLE TO NATO", fr("S", rel="NATO")),
    ("(S//REL DEU/FRA)", fr("S", rel="FRA DEU")),
    ("SECRET // DIFFUSION LIMITÉE À FRA, DEU", fr("S", rel="FRA DEU")),
    ("secret // diffusion limitee a fra, deu", fr("S", rel="FRA DEU")),
    ("DR // DIFFUSION LIMITÉE AUX FRA, EU", fr("DR", rel="FRA EU")),
    ("S // REL TO NONE", fr("S", rel="")),
    ("S // DIFFUSION LIMITÉE À AUCUN", fr("S", rel="")),
    ("S-SF // REL TO FRA, DEU", fr("S", rel="FRA")),
    ("S // REL TO FRA, DEU // REL TO DEU", fr("S", rel="DEU")),
    ("S // REL TO FRA // REL TO DEU", fr("S", rel="")),
    ("TS // ALPHA // REL TO FRA, GBR", fr("TS", "ALPHA", "FRA GBR")),
    ("S\u2013SF", fr("S", rel="FRA")),
    ("TRE\u0301S SECRET", fr("TS")),
]

NATO_TABLE = [
    ("NATO UNCLASSIFIED", nato("NU")),
    ("NU", nato("NU")),
    ("NATO RESTRICTED", nato("NR")),
    ("RESTRICTED", nato("NR")),
    ("(NR)", nato("NR")),
    ("NATO CONFIDENTIAL", nato("NC")),
    ("CONFIDENTIEL OTAN", nato("NC")),
    ("NATO SECRET", nato("NS")),
    ("NS", nato("NS")),
    ("(NS)", nato("NS")),
    ("nato secret", nato("NS")),
    ("SECRET OTAN", nato("NS")),
    ("COSMIC TOP SECRET", nato("CTS")),
    ("COSMIC TRÈS SECRET", nato("CTS")),
    ("CTS", nato("CTS")),
    ("(CTS//ATOMAL)", nato("CTS", "ATOMAL")),
    ("NATO SECRET // REL TO FRA, DEU", nato("NS", rel="FRA DEU")),
]


def test_the_tables_are_big_enough() -> None:
    assert len(FRENCH_TABLE) + len(NATO_TABLE) >= 60


@pytest.mark.parametrize(("text", "expected"), FRENCH_TABLE)
def test_french_scheme_markings(text: str, expected: Label) -> None:
    assert parse_marking(text, FRENCH) == expected


@pytest.mark.parametrize(("text", "expected"), NATO_TABLE)
def test_nato_scheme_markings(text: str, expected: Label) -> None:
    assert parse_marking(text, NATO) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "no level"),
        ("   ", "no level"),
        ("SF", "without a level"),
        ("SPÉCIAL FRANCE", "without a level"),
        ("REL TO FRA", "without a level"),
        ("CONFIDENTIEL", "'CONFIDENTIEL' is not a level"),
        ("SECRET PAS DU TOUT", "'PAS' after the level"),
        ("SECRET //", "empty '//' segment"),
        ("SECRET // REL TO", "names no country"),
        ("SECRET // REL TO F", "not a country"),
        ("TS // AL PHA!", "not a compartment"),
        ("NATO SECRET", "'NATO' is not a level"),
        ("HUSH-HUSH", "is not a level"),
    ],
)
def test_unparseable_markings_say_what_and_how(text: str, complaint: str) -> None:
    with pytest.raises(MarkingError) as err:
        parse_marking(text, FRENCH)
    message = err.value.message
    assert complaint in message
    assert "accepted forms" in message and "(S//SF)" in message and "DR" in message


def test_nato_words_are_not_french_levels() -> None:
    with pytest.raises(MarkingError, match="COSMIC"):
        parse_marking("COSMIC TOP SECRET", FRENCH)


def test_rendering_examples() -> None:
    label = fr("TS", "BRAVO ALPHA", "FRA")
    assert render_banner(label) == "TRÈS SECRET SPÉCIAL FRANCE // ALPHA/BRAVO"
    assert render_banner(label, "en") == "TOP SECRET SPECIAL FRANCE // ALPHA/BRAVO"
    assert render_portion(label) == "(TS//ALPHA/BRAVO//SF)"
    assert render_portion(fr("S", rel="FRA")) == "(S//SF)"
    assert (
        render_banner(fr("DR", rel="FRA DEU"))
        == "DIFFUSION RESTREINTE // DIFFUSION LIMITÉE À DEU, FRA"
    )
    assert render_banner(fr("DR", rel="FRA DEU"), "en") == "RESTRICTED // REL TO DEU, FRA"
    assert render_portion(fr("NP")) == "(NP)"
    with pytest.raises(MarkingError, match="'fr' or 'en'"):
        render_banner(label, "de")


def labels_of(scheme: LevelScheme) -> st.SearchStrategy[Label]:
    names = st.sampled_from(["ALPHA", "BRAVO", "X1", "COMPARTMENT-NAME", "SECRET", "N_2"])
    codes = st.sampled_from(["FRA", "DEU", "GBR", "NATO", "EU", "USA"])
    return st.builds(
        Label,
        st.sampled_from(scheme.levels),
        st.frozensets(names, max_size=4),
        st.none() | st.frozensets(codes, max_size=4),
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([FRENCH, NATO]).flatmap(labels_of))
def test_render_then_parse_is_the_identity(label: Label) -> None:
    scheme = label.scheme
    assert parse_marking(render_banner(label, "fr"), scheme) == label
    assert parse_marking(render_banner(label, "en"), scheme) == label
    assert parse_marking(render_portion(label), scheme) == label
    assert parse_marking(render_banner(label).lower(), scheme) == label
