"""Parse and render classification markings as people write them, in French and English.

Grammar (after stripping accents, folding case, and removing one pair of surrounding
parentheses or brackets, so banner ``TRÈS SECRET`` and portion ``(TS)`` are both accepted)::

    marking  := level [caveat ...] ("//" segment)*
    level    := any code, name or alias of the scheme ("S", "SECRET", "CONFIDENTIEL DÉFENSE",
                "NATO SECRET", ...); spaces, hyphens and underscores are interchangeable
                and the longest spelling wins ("SECRET DÉFENSE" is TS, not S + "DÉFENSE")
    caveat   := "SF" | "SPÉCIAL FRANCE" | rel          (may follow the level directly:
                                                         "SECRET SPÉCIAL FRANCE", "S-SF")
    segment  := "SF" | "SPÉCIAL FRANCE" | rel | compartment ("/" | "," | " " compartment)*
    rel      := ("REL" ["TO"] | "RELEASABLE TO" | "DIFFUSION LIMITÉE À") code+
                codes separated by spaces, commas or "/"; "NONE" / "AUCUN" = nobody

``SF`` / ``SPÉCIAL FRANCE`` means ``releasable_to = {"FRA"}``. Several releasability caveats
intersect. A **bare caveat without a level** ("SF", "SPÉCIAL FRANCE", "REL TO FRA") is an
error: a marking always states its level, and nothing is ever defaulted silently.

Rendering uses each level's canonical names so ``parse_marking(render_*(label)) == label``
for every label of the scheme.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from egide.errors import MarkingError
from egide.security.labels import CODE_RE, COMPARTMENT_RE, RESERVED_WORDS, SPECIAL_FRANCE, Label
from egide.security.levels import Level, LevelScheme, strip_accents

_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_SEGMENTS = re.compile(r"\s*/\s*/+\s*")
_WORDS = re.compile(r"[\s\-_/,]+")
_COMPARTMENT_SEP = re.compile(r"[\s,/]+")
_REL_FILLERS = frozenset({"TO", "A", "AUX"})
_NOBODY = frozenset({"NONE", "AUCUN"})


@dataclass(frozen=True)
class ParsedMarking:
    """A parsed marking and how it was written (used by the spillage scanner's rules)."""

    label: Label
    level_words: tuple[str, ...]
    has_caveat: bool


def _accepted(scheme: LevelScheme) -> str:
    levels = ", ".join(f"{lv.code} ({lv.name_fr} / {lv.name_en})" for lv in scheme.levels)
    return (
        f"accepted forms: a level of scheme {scheme.name!r} [{levels}], optionally followed by "
        "'SPÉCIAL FRANCE' or 'SF', '// COMPARTMENT/COMPARTMENT', '// REL TO FRA, DEU' or "
        "'// DIFFUSION LIMITÉE À FRA, DEU'; portion form like '(S//SF)' or '(TS//ALPHA)'"
    )


def _fail(text: str, scheme: LevelScheme, what: str) -> MarkingError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return MarkingError(
        f"could not understand the marking {shown!r}: {what}; {_accepted(scheme)}",
        param="marking",
    )


@lru_cache(maxsize=32)
def _level_table(scheme: LevelScheme) -> list[tuple[tuple[str, ...], Level]]:
    table = [(tuple(key.split(" ")), level) for key, level in scheme.spellings().items()]
    table.sort(key=lambda item: -len(item[0]))
    return table


def _match_level(words: list[str], scheme: LevelScheme) -> tuple[Level, int] | None:
    for spelling, level in _level_table(scheme):
        if tuple(words[: len(spelling)]) == spelling:
            return level, len(spelling)
    return None


def _rel_start(words: list[str]) -> int:
    """How many words open a releasability caveat at the start of ``words`` (0 if none)."""
    if words[:2] == ["RELEASABLE", "TO"]:
        return 2
    if words[:1] == ["REL"]:
        return 2 if words[1:2] == ["TO"] else 1
    if words[:2] == ["DIFFUSION", "LIMITEE"]:
        return 3 if words[2:3] and words[2] in _REL_FILLERS else 2
    return 0


def _rel_codes(words: list[str], text: str, scheme: LevelScheme) -> frozenset[str]:
    codes = [w for w in words if w not in _REL_FILLERS]
    if len(codes) == 1 and codes[0] in _NOBODY:
        return frozenset()
    if not codes:
        raise _fail(text, scheme, "a releasability caveat names no country or organisation")
    for code in codes:
        if not CODE_RE.fullmatch(code) or code in RESERVED_WORDS:
            raise _fail(text, scheme, f"{code!r} is not a country (FRA, DEU) or org (NATO) code")
    return frozenset(codes)


def _is_sf(words: list[str]) -> bool:
    return words in (["SF"], ["SPECIAL", "FRANCE"])


def parse_detail(text: str, scheme: LevelScheme) -> ParsedMarking:
    """Like :func:`parse_marking`, also telling how the level was written."""
    folded = _DASHES.sub("-", strip_accents(text)).upper().strip()
    if len(folded) >= 2 and (folded[0], folded[-1]) in (("(", ")"), ("[", "]")):
        folded = folded[1:-1].strip()
    segments = _SEGMENTS.split(folded)
    first = [w for w in _WORDS.split(segments[0]) if w]
    if not first:
        raise _fail(text, scheme, "there is no level")
    matched = _match_level(first, scheme)
    if matched is None:
        if _is_sf(first[:1]) or _is_sf(first[:2]) or _rel_start(first):
            raise _fail(text, scheme, "a caveat is given without a level (write e.g. 'S-SF')")
        raise _fail(text, scheme, f"{first[0]!r} is not a level")
    level, used = matched
    level_words = tuple(first[:used])
    rel: frozenset[str] | None = None
    compartments: set[str] = set()
    rest = first[used:]
    while rest:
        if _is_sf(rest[:1]) or _is_sf(rest[:2]):
            rel = SPECIAL_FRANCE if rel is None else rel & SPECIAL_FRANCE
            rest = rest[1:] if rest[0] == "SF" else rest[2:]
        elif n := _rel_start(rest):
            codes = _rel_codes(rest[n:], text, scheme)
            rel = codes if rel is None else rel & codes
            rest = []
        else:
            raise _fail(text, scheme, f"{rest[0]!r} after the level is not a caveat")
    for segment in segments[1:]:
        words = [w for w in _WORDS.split(segment) if w]
        if not words:
            raise _fail(text, scheme, "an empty '//' segment")
        if _is_sf(words):
            rel = SPECIAL_FRANCE if rel is None else rel & SPECIAL_FRANCE
        elif n := _rel_start(words):
            codes = _rel_codes(words[n:], text, scheme)
            rel = codes if rel is None else rel & codes
        else:
            for name in (c for c in _COMPARTMENT_SEP.split(segment) if c):
                head = re.split(r"[-_]", name)[0]
                if not COMPARTMENT_RE.fullmatch(name) or head in RESERVED_WORDS:
                    raise _fail(text, scheme, f"{name!r} is not a compartment name")
                compartments.add(name)
    label = Label(level, frozenset(compartments), rel)
    has_caveat = bool(compartments) or rel is not None
    return ParsedMarking(label, level_words, has_caveat)


def parse_marking(text: str, scheme: LevelScheme) -> Label:
    """A marking in banner or portion form, French or English → its :class:`Label`.

    Raises ``MarkingError`` (saying what was not understood and the accepted forms).
    """
    return parse_detail(text, scheme).label


def _codes(codes: frozenset[str], sep: str, nobody: str) -> str:
    return sep.join(sorted(codes)) if codes else nobody


def render_banner(label: Label, lang: str = "fr") -> str:
    """``TRÈS SECRET SPÉCIAL FRANCE // ALPHA/BRAVO`` (fr) or ``TOP SECRET ...`` (en)."""
    if lang not in ("fr", "en"):
        raise MarkingError(f"unknown banner language {lang!r}: use 'fr' or 'en'", param="lang")
    parts = [label.level.name(lang)]
    rel = label.releasable_to
    if rel == SPECIAL_FRANCE:
        parts[0] += " SPÉCIAL FRANCE" if lang == "fr" else " SPECIAL FRANCE"
    if label.compartments:
        parts.append("/".join(sorted(label.compartments)))
    if rel is not None and rel != SPECIAL_FRANCE:
        if lang == "fr":
            parts.append("DIFFUSION LIMITÉE À " + _codes(rel, ", ", "AUCUN"))
        else:
            parts.append("REL TO " + _codes(rel, ", ", "NONE"))
    return " // ".join(parts)


def render_portion(label: Label) -> str:
    """``(S//SF)``, ``(TS//ALPHA/BRAVO)``, ``(DR//REL DEU/FRA)``."""
    parts = [label.level.code]
    if label.compartments:
        parts.append("/".join(sorted(label.compartments)))
    rel = label.releasable_to
    if rel == SPECIAL_FRANCE:
        parts.append("SF")
    elif rel is not None:
        parts.append("REL " + _codes(rel, "/", "NONE"))
    return "(" + "//".join(parts) + ")"


def render_compact(label: Label) -> str:
    """The portion marking without parentheses, as labels travel in headers and are stored:
    ``S//SF``, ``DR``. ``parse_marking`` reads it back to the same label."""
    return render_portion(label)[1:-1]
