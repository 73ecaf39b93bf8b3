"""Lattice laws of labels and clearances (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egide.errors import MarkingError, PolicyError
from egide.security.labels import Clearance, Label, bottom, dominates, join
from egide.security.levels import FRENCH, NATO

COMPARTMENTS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA-1"]
NATIONS = ["FRA", "DEU", "GBR", "NATO"]

levels = st.sampled_from(FRENCH.levels)
compartment_sets = st.frozensets(st.sampled_from(COMPARTMENTS))
releasability = st.none() | st.frozensets(st.sampled_from(NATIONS))
labels = st.builds(Label, levels, compartment_sets, releasability)
clearances = st.builds(Clearance, levels, compartment_sets, st.sampled_from(NATIONS))

FAST = settings(max_examples=300, deadline=None)


@FAST
@given(labels, labels)
def test_join_is_commutative(a: Label, b: Label) -> None:
    assert join(a, b) == join(b, a)


@FAST
@given(labels, labels, labels)
def test_join_is_associative(a: Label, b: Label, c: Label) -> None:
    assert join(join(a, b), c) == join(a, join(b, c)) == join(a, b, c)


@FAST
@given(labels)
def test_join_is_idempotent_and_bottom_is_its_identity(a: Label) -> None:
    assert join(a, a) == a
    assert join(a, bottom(FRENCH)) == a == join(bottom(FRENCH), a)
    assert a.dominates(bottom(FRENCH))


@FAST
@given(labels)
def test_dominance_is_reflexive(a: Label) -> None:
    assert a.dominates(a)


@FAST
@given(labels, labels)
def test_dominance_is_antisymmetric(a: Label, b: Label) -> None:
    if a.dominates(b) and b.dominates(a):
        assert a == b


@FAST
@given(labels, labels, labels)
def test_dominance_is_transitive(a: Label, b: Label, c: Label) -> None:
    if a.dominates(b) and b.dominates(c):
        assert a.dominates(c)


@FAST
@given(labels, labels, labels)
def test_join_is_the_least_upper_bound(a: Label, b: Label, c: Label) -> None:
    j = join(a, b)
    assert j.dominates(a) and j.dominates(b)
    if c.dominates(a) and c.dominates(b):
        assert c.dominates(j)
    # and the lub of a dominated pair is the dominating label
    assert join(j, a) == j


@FAST
@given(clearances, labels, labels)
def test_clearance_dominance_is_monotone(c: Clearance, a: Label, b: Label) -> None:
    if dominates(c, a) and a.dominates(b):
        assert dominates(c, b)
    # reading the join requires reading both parts, and reading both parts suffices
    assert dominates(c, join(a, b)) == (dominates(c, a) and dominates(c, b))


def test_the_worked_examples_of_the_design() -> None:
    s, dr, ts = FRENCH.level("S"), FRENCH.level("DR"), FRENCH.level("TS")
    french_officer = Clearance(s, frozenset({"ALPHA"}), "FRA")
    german_officer = Clearance(ts, frozenset({"ALPHA"}), "DEU")
    sf = Label(s, frozenset(), frozenset({"FRA"}))
    assert dominates(french_officer, sf)
    assert not dominates(german_officer, sf)
    assert not dominates(french_officer, Label(ts))
    assert not dominates(french_officer, Label(dr, frozenset({"BRAVO"})))
    rel_fra = Label(dr, frozenset(), frozenset({"FRA", "DEU"}))
    rel_deu = Label(s, frozenset({"ALPHA"}), frozenset({"DEU", "GBR"}))
    assert join(rel_fra, rel_deu) == Label(s, frozenset({"ALPHA"}), frozenset({"DEU"}))
    assert join(Label(dr, frozenset(), frozenset({"FRA"})), rel_deu).releasable_to == frozenset()


def test_legacy_levels_map_upward() -> None:
    assert FRENCH.level("Confidentiel Défense") == FRENCH.level("S")
    assert FRENCH.level("secret-defense") == FRENCH.level("TS")
    assert FRENCH.level("TSD") == FRENCH.level("TS")
    assert [lv.code for lv in NATO.levels] == ["NU", "NR", "NC", "NS", "CTS"]


def test_mixing_schemes_raises() -> None:
    fr, nato = Label(FRENCH.level("S")), Label(NATO.level("NS"))
    with pytest.raises(PolicyError, match="scheme"):
        join(fr, nato)
    with pytest.raises(PolicyError, match="scheme"):
        fr.dominates(nato)
    with pytest.raises(PolicyError, match="scheme"):
        dominates(Clearance(NATO.level("CTS")), fr)
    with pytest.raises(PolicyError):
        assert FRENCH.level("S") < NATO.level("NS")


def test_malformed_values_are_refused_with_a_fix() -> None:
    with pytest.raises(MarkingError, match="upper-case"):
        Label(FRENCH.level("S"), frozenset({"alpha"}))
    with pytest.raises(MarkingError, match="alpha-3"):
        Label(FRENCH.level("S"), frozenset(), frozenset({"fr"}))
    with pytest.raises(MarkingError, match="reserved"):
        Label(FRENCH.level("S"), frozenset({"REL"}))
    with pytest.raises(PolicyError):
        join()
