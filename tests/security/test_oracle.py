"""Exhaustive comparison of dominance and join with an independent oracle.

The oracle works on integers: a level is its rank, a compartment set and a releasability set
are bitmasks, and "no releasability restriction" is -1. It shares no code with
``egide.security``; the grid is enumerated completely.
"""

from __future__ import annotations

import itertools
import time

from egide.security.labels import Clearance, Label, dominates, join
from egide.security.levels import FRENCH

COMPS = ("ALPHA", "BRAVO", "CHARLIE", "DELTA")  # bit i = COMPS[i]
NATS = ("FRA", "DEU", "GBR")  # bit i = NATS[i]
OUTSIDER = "USA"  # a nationality in no releasability set of the grid
ANY = -1


def oracle_clears(lvl: int, cmask: int, nat: int, l_lvl: int, l_c: int, l_r: int) -> bool:
    if lvl < l_lvl:
        return False
    if l_c & ~cmask:
        return False
    if l_r == ANY:
        return True
    return nat >= 0 and bool(l_r >> nat & 1)


def oracle_above(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    if a[0] < b[0] or (b[1] & ~a[1]):
        return False
    if b[2] == ANY:
        return True
    return a[2] != ANY and (a[2] & ~b[2]) == 0


def oracle_join(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
    rel = b[2] if a[2] == ANY else a[2] if b[2] == ANY else a[2] & b[2]
    return (max(a[0], b[0]), a[1] | b[1], rel)


def to_label(t: tuple[int, int, int]) -> Label:
    comps = frozenset(c for i, c in enumerate(COMPS) if t[1] >> i & 1)
    rel = None if t[2] == ANY else frozenset(n for i, n in enumerate(NATS) if t[2] >> i & 1)
    return Label(FRENCH.levels[t[0]], comps, rel)


def from_label(label: Label) -> tuple[int, int, int]:
    cmask = sum(1 << COMPS.index(c) for c in label.compartments)
    rel = ANY
    if label.releasable_to is not None:
        rel = sum(1 << NATS.index(n) for n in label.releasable_to)
    return (label.level.rank, cmask, rel)


GRID = [
    (lvl, c, r)
    for lvl in range(len(FRENCH.levels))
    for c in range(1 << len(COMPS))
    for r in [ANY, *range(1 << len(NATS))]
]


def test_clearance_dominance_matches_the_oracle_exhaustively() -> None:
    started = time.perf_counter()
    labels = [(t, to_label(t)) for t in GRID]
    nat_codes = [*NATS, OUTSIDER]
    pairs = mismatches = 0
    for lvl, cmask, n in itertools.product(
        range(len(FRENCH.levels)), range(1 << len(COMPS)), range(len(nat_codes))
    ):
        comps = frozenset(c for i, c in enumerate(COMPS) if cmask >> i & 1)
        clearance = Clearance(FRENCH.levels[lvl], comps, nat_codes[n])
        nat_bit = n if n < len(NATS) else -1
        for t, label in labels:
            pairs += 1
            if dominates(clearance, label) != oracle_clears(lvl, cmask, nat_bit, *t):
                mismatches += 1
    assert mismatches == 0
    assert pairs >= 100_000, pairs
    assert time.perf_counter() - started < 10


def test_label_dominance_and_join_match_the_oracle_exhaustively() -> None:
    started = time.perf_counter()
    labels = [(t, to_label(t)) for t in GRID]
    pairs = mismatches = 0
    for (ta, a), (tb, b) in itertools.product(labels, labels):
        pairs += 1
        if a.dominates(b) != oracle_above(ta, tb):
            mismatches += 1
        if from_label(join(a, b)) != oracle_join(ta, tb):
            mismatches += 1
    assert mismatches == 0
    assert pairs >= 100_000, pairs
    assert time.perf_counter() - started < 10
