"""Labels, clearances, dominance and the high-water-mark join.

A :class:`Label` is (level, compartments, releasable_to); ``releasable_to=None`` means no
restriction beyond the level, an empty set means releasable to nobody (what the join of
``REL FRA`` and ``REL DEU`` gives). A :class:`Clearance` is (level, compartments,
nationality).

Labels form a lattice ordered by :meth:`Label.dominates`: higher or equal level, superset of
compartments, and *subset* of releasability (``None`` being the set of every nation). The
join is the least upper bound: max level, union of compartments, intersection of
releasability (``None`` is its identity). Mixing levels of two schemes raises ``PolicyError``.

Compartment names are upper-case ASCII letters, digits, ``-`` and ``_`` (``ALPHA``,
``COMPARTMENT-NAME``). Releasability codes are ISO-3166 alpha-3 country codes (``FRA``,
``DEU``) or organisation codes (``NATO``, ``EU``); ``Spécial France`` is ``{"FRA"}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from egide.errors import MarkingError, PolicyError
from egide.security.levels import Level, LevelScheme

COMPARTMENT_RE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,63}")
CODE_RE = re.compile(r"[A-Z]{2,8}")
# Words that open a caveat in a marking; a compartment may not start with one.
RESERVED_WORDS = frozenset(
    {"SF", "SPECIAL", "REL", "RELEASABLE", "DIFFUSION", "DL", "NONE", "AUCUN", "TO"}
)
SPECIAL_FRANCE: frozenset[str] = frozenset({"FRA"})

Part = Literal["level", "compartment", "releasability"]


def _check_compartments(values: frozenset[str]) -> None:
    for name in values:
        if not isinstance(name, str) or not COMPARTMENT_RE.fullmatch(name):
            raise MarkingError(
                f"invalid compartment name {name!r}: use upper-case letters, digits, '-' or '_' "
                "(e.g. 'ALPHA', 'COMPARTMENT-NAME')"
            )
        if re.split(r"[-_]", name)[0] in RESERVED_WORDS:
            raise MarkingError(
                f"compartment name {name!r} starts with a reserved marking word: rename it"
            )


def _check_code(code: str, what: str) -> None:
    if not isinstance(code, str) or not CODE_RE.fullmatch(code) or code in RESERVED_WORDS:
        raise MarkingError(
            f"invalid {what} {code!r}: use an ISO-3166 alpha-3 country code (FRA, DEU) "
            "or an organisation code (NATO, EU), in upper case"
        )


@dataclass(frozen=True)
class Label:
    """The classification of a piece of data."""

    level: Level
    compartments: frozenset[str] = frozenset()
    releasable_to: frozenset[str] | None = None

    def __post_init__(self) -> None:
        _check_compartments(self.compartments)
        for code in self.releasable_to or ():
            _check_code(code, "releasability code")

    @property
    def scheme(self) -> LevelScheme:
        return self.level.scheme

    def dominates(self, other: Label) -> bool:
        """True iff ``self`` is at least as restrictive as ``other`` on every axis."""
        return label_gap(self, other) is None

    def join(self, *others: Label) -> Label:
        return join(self, *others)


@dataclass(frozen=True)
class Clearance:
    """What a person may read: a level, compartments, and their nationality."""

    level: Level
    compartments: frozenset[str] = frozenset()
    nationality: str = "FRA"

    def __post_init__(self) -> None:
        _check_compartments(self.compartments)
        _check_code(self.nationality, "nationality")

    def dominates(self, label: Label) -> bool:
        return dominates(self, label)


def _levels(a: Level, b: Level) -> None:
    if a.scheme_name != b.scheme_name:
        raise PolicyError(
            f"level {a.code} is from scheme {a.scheme_name!r} and {b.code} from "
            f"{b.scheme_name!r}: labels of different schemes cannot be combined"
        )


def clearance_gap(clearance: Clearance, label: Label) -> tuple[Part, str] | None:
    """Why ``clearance`` does not dominate ``label`` (the first failing part), or None."""
    _levels(clearance.level, label.level)
    if clearance.level.rank < label.level.rank:
        return "level", (
            f"level: the data is {label.level.code} ({label.level.name_en}) and the clearance "
            f"is only {clearance.level.code}"
        )
    missing = label.compartments - clearance.compartments
    if missing:
        return "compartment", (
            f"compartment: the clearance lacks {len(missing)} of the data's "
            f"{len(label.compartments)} compartment(s)"
        )
    if label.releasable_to is not None and clearance.nationality not in label.releasable_to:
        return "releasability", (
            f"releasability: the data is not releasable to {clearance.nationality}"
        )
    return None


def label_gap(upper: Label, lower: Label) -> tuple[Part, str] | None:
    """Why ``upper`` does not dominate ``lower`` (the first failing part), or None."""
    _levels(upper.level, lower.level)
    if upper.level.rank < lower.level.rank:
        return "level", f"level: {lower.level.code} is above {upper.level.code}"
    missing = lower.compartments - upper.compartments
    if missing:
        return "compartment", f"compartment: {len(missing)} compartment(s) not covered"
    if lower.releasable_to is not None and (
        upper.releasable_to is None or not upper.releasable_to <= lower.releasable_to
    ):
        return "releasability", "releasability: the releasability is narrower"
    return None


def dominates(clearance: Clearance, label: Label) -> bool:
    """Level ≥, compartments ⊇, and nationality ∈ releasable_to when it is set."""
    return clearance_gap(clearance, label) is None


def bottom(scheme: LevelScheme) -> Label:
    """The lowest label: the scheme's lowest level, no compartment, no restriction."""
    return Label(scheme.bottom)


def join(*labels: Label) -> Label:
    """High-water mark: max level, union of compartments, intersection of releasability."""
    if not labels:
        raise PolicyError("join() needs at least one label: use bottom(scheme) for none")
    return join_all(labels)


def join_all(labels: Iterable[Label]) -> Label:
    result: Label | None = None
    for label in labels:
        if result is None:
            result = label
            continue
        _levels(result.level, label.level)
        level = label.level if label.level.rank > result.level.rank else result.level
        rel: frozenset[str] | None
        if result.releasable_to is None:
            rel = label.releasable_to
        elif label.releasable_to is None:
            rel = result.releasable_to
        else:
            rel = result.releasable_to & label.releasable_to
        result = Label(level, result.compartments | label.compartments, rel)
    if result is None:
        raise PolicyError("join of no labels: use bottom(scheme) instead")
    return result
