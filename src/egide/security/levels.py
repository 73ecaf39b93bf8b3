"""Ordered, configurable classification level schemes.

A scheme is a name and an ordered tuple of levels, lowest first. Each level has a short
``code`` (used in portion markings: ``(DR)``), a French and an English banner name, and
aliases (other spellings and legacy markings that map to it). Two schemes ship built in:

- ``FRENCH`` (``"fr"``): NP < DR < S < TS. Legacy markings map *upward*: Confidentiel
  Défense (CD) → S, Secret Défense (SD) → TS, Très Secret Défense (TSD) → TS.
- ``NATO`` (``"nato"``): NU < NR < NC < NS < CTS.

A scheme can be built from configuration with :func:`scheme_from_config`; the shape is::

    {
      "name": "fr",
      "levels": [                      # lowest first
        {"code": "NP", "fr": "NON PROTÉGÉ", "en": "UNCLASSIFIED", "aliases": ["NON PROTEGE"]},
        {"code": "DR", "fr": "DIFFUSION RESTREINTE", "en": "RESTRICTED"},
        ...
      ]
    }

``aliases`` is optional. Codes, names and aliases are matched after :func:`normalize`
(accents stripped, upper case, hyphens and runs of spaces folded to one space), so they must
be unique across the scheme after normalisation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from egide.errors import ConfigError, PolicyError

_FOLD = re.compile(r"[\s\-\u2010-\u2015_]+")


def strip_accents(text: str) -> str:
    """``"Très Spécial"`` → ``"Tres Special"`` (NFKD, combining marks removed)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize(text: str) -> str:
    """Fold a level name for matching: no accents, upper case, hyphens and spaces as one space."""
    return _FOLD.sub(" ", strip_accents(text).upper()).strip()


@dataclass(frozen=True)
class Level:
    """One level of a scheme. Obtain levels from a :class:`LevelScheme`, never build them."""

    code: str
    rank: int
    name_fr: str
    name_en: str
    aliases: tuple[str, ...]
    scheme_name: str
    scheme: LevelScheme = field(init=False, compare=False, repr=False, hash=False)

    def _check(self, other: Level) -> None:
        if self.scheme_name != other.scheme_name:
            raise PolicyError(
                f"cannot compare level {self.code} of scheme {self.scheme_name!r} with "
                f"{other.code} of scheme {other.scheme_name!r}: use one scheme per instance"
            )

    def __lt__(self, other: Level) -> bool:
        self._check(other)
        return self.rank < other.rank

    def __le__(self, other: Level) -> bool:
        self._check(other)
        return self.rank <= other.rank

    def __gt__(self, other: Level) -> bool:
        self._check(other)
        return self.rank > other.rank

    def __ge__(self, other: Level) -> bool:
        self._check(other)
        return self.rank >= other.rank

    def name(self, lang: str = "fr") -> str:
        return self.name_en if lang == "en" else self.name_fr


@dataclass(frozen=True)
class LevelScheme:
    """An ordered scheme of levels, lowest first."""

    name: str
    levels: tuple[Level, ...]
    _index: dict[str, Level] = field(init=False, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if not self.levels:
            raise ConfigError(f"level scheme {self.name!r} has no levels: declare at least one")
        index: dict[str, Level] = {}
        for rank, level in enumerate(self.levels):
            if level.rank != rank or level.scheme_name != self.name:
                raise ConfigError(f"level {level.code} is out of order in scheme {self.name!r}")
            object.__setattr__(level, "scheme", self)
            for spelling in (level.code, level.name_fr, level.name_en, *level.aliases):
                key = normalize(spelling)
                if index.get(key, level) != level:
                    raise ConfigError(
                        f"{spelling!r} names two levels of scheme {self.name!r} "
                        f"({index[key].code} and {level.code}): make each spelling unique"
                    )
                index[key] = level
        object.__setattr__(self, "_index", index)

    @property
    def bottom(self) -> Level:
        return self.levels[0]

    @property
    def top(self) -> Level:
        return self.levels[-1]

    def spellings(self) -> dict[str, Level]:
        """Every normalised spelling (codes, names, aliases) → its level."""
        return dict(self._index)

    def lookup(self, text: str) -> Level | None:
        """The level a code, name or alias designates (any case, accents optional)."""
        return self._index.get(normalize(text))

    def level(self, code: str) -> Level:
        """The level for ``code`` (or any spelling); raises ``PolicyError`` if unknown."""
        found = self.lookup(code)
        if found is None:
            known = ", ".join(lv.code for lv in self.levels)
            raise PolicyError(f"unknown level {code!r} in scheme {self.name!r}: use one of {known}")
        return found


def build_scheme(name: str, levels: Sequence[Mapping[str, Any] | tuple[str, ...]]) -> LevelScheme:
    """Build a scheme from level descriptions, lowest first (shape in the module docstring).

    A level is a mapping ``{"code", "fr", "en", "aliases"}`` or a tuple
    ``(code, fr, en, *aliases)``.
    """
    built: list[Level] = []
    for rank, item in enumerate(levels):
        spec: Mapping[str, Any] = (
            {"code": item[0], "fr": item[1], "en": item[2], "aliases": item[3:]}
            if isinstance(item, tuple)
            else item
        )
        try:
            code = str(spec["code"])
            fr = str(spec.get("fr", spec.get("name_fr", code)))
            en = str(spec.get("en", spec.get("name_en", fr)))
            aliases = tuple(str(a) for a in spec.get("aliases", ()))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"level #{rank} of scheme {name!r} is malformed ({exc!r}): write "
                '{"code": "DR", "fr": "DIFFUSION RESTREINTE", "en": "RESTRICTED", "aliases": []}'
            ) from exc
        built.append(Level(code.upper(), rank, fr, en, aliases, name))
    return LevelScheme(name, tuple(built))


def scheme_from_config(config: Mapping[str, Any]) -> LevelScheme:
    """``{"name": ..., "levels": [...]}`` → a scheme (shape in the module docstring)."""
    if "name" not in config or "levels" not in config:
        raise ConfigError('a level scheme needs "name" and "levels" (lowest level first)')
    return build_scheme(str(config["name"]), list(config["levels"]))


def _spec(code: str, fr: str, en: str, *aliases: str) -> dict[str, Any]:
    return {"code": code, "fr": fr, "en": en, "aliases": list(aliases)}


# (code, French name, English name, *aliases), lowest level first.
_FR_LEVELS = [
    ("NP", "NON PROTÉGÉ", "UNCLASSIFIED", "NOT PROTECTED"),
    ("DR", "DIFFUSION RESTREINTE", "RESTRICTED"),
    ("S", "SECRET", "SECRET", "CONFIDENTIEL DÉFENSE", "CD", "CONFIDENTIAL DEFENCE"),
    ("TS", "TRÈS SECRET", "TOP SECRET", "SECRET DÉFENSE", "SD", "TRÈS SECRET DÉFENSE", "TSD"),
]
_NATO_LEVELS = [
    ("NU", "NATO NON CLASSIFIÉ", "NATO UNCLASSIFIED", "UNCLASSIFIED", "NON CLASSIFIÉ"),
    ("NR", "NATO DIFFUSION RESTREINTE", "NATO RESTRICTED", "RESTRICTED", "DR OTAN"),
    ("NC", "NATO CONFIDENTIEL", "NATO CONFIDENTIAL", "CONFIDENTIAL", "CONFIDENTIEL OTAN"),
    ("NS", "NATO SECRET", "NATO SECRET", "SECRET", "SECRET OTAN"),
    ("CTS", "COSMIC TRÈS SECRET", "COSMIC TOP SECRET", "TOP SECRET", "TRÈS SECRET"),
]
FRENCH = build_scheme("fr", _FR_LEVELS)
NATO = build_scheme("nato", _NATO_LEVELS)

_BUILT_IN = {"fr": FRENCH, "french": FRENCH, "nato": NATO, "otan": NATO}


def scheme_by_name(name: str) -> LevelScheme:
    """``"fr"`` or ``"nato"`` (also ``"french"``, ``"otan"``; any case)."""
    try:
        return _BUILT_IN[name.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"unknown level scheme {name!r}: use 'fr' or 'nato', or declare one in the config"
        ) from None
