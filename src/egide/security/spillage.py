"""Find classification markings inside free text (prompts, model outputs, documents).

A marking is detected by exactly one of three deterministic rules; anything else is prose:

1. **Upper-case banner** anywhere in the text: a level *name* of the scheme written in upper
   case (accents optional, words separated by any run of spaces, hyphens or line breaks:
   ``TRÈS SECRET``, ``TRES-SECRET``, ``DIFFUSION\\nRESTREINTE``, ``CONFIDENTIEL DÉFENSE``,
   ``NATO SECRET``), optionally followed by caveats (``SPÉCIAL FRANCE``, ``// ALPHA/BRAVO``,
   ``// REL TO FRA, DEU``). Short codes of three letters or fewer (``S``, ``DR``, ``NP``,
   ``TS``, ``CD``, ``NS``) count only when a caveat follows them (``S-SF``, ``TS//ALPHA``,
   ``DR // REL FRA``): a bare ``DR`` or ``S`` in upper-case text is not a marking.
2. **Portion marking**: a parenthesis not glued to a preceding letter or digit, whose whole
   content parses as a marking and is written in upper case (``(DR)``, ``(S//SF)``,
   ``(SECRET)``) — or, in any case, contains ``//`` (``(s//sf)``). Legacy short aliases
   (``(CD)``, ``(SD)``) count only with a caveat. So ``file(s)``, ``(s)``, ``(Dr. Martin)``
   and ``(secret)`` are prose.
3. **Marking line**: a line whose whole content, once stripped of spaces and decoration
   (``* # _ = - | : > .``), parses as a marking in any case (``Très secret``, ``Diffusion
   restreinte``, ``secret // alpha``), provided it uses a level name of 4+ letters or a caveat.

Hence lower-case prose is never a marking ("the secret of good bread", "une liste
restreinte", "Dr. Martin", "NP" inside a word), while upper-case words that *are* level names
("THIS IS NOT SECRET") are flagged: in a classified enclave that false positive is the safe
side. A caveat alone ("SF", "SPÉCIAL FRANCE") carries no level and is not a finding.

A :class:`Finding` names the marking's level and where it is (line, column, character
offsets) but never quotes the text — not the marking, not its surroundings — so a refusal
can be logged without leaking what was refused. Compartments are counted, not named.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from egide.errors import MarkingError
from egide.security.labels import Clearance, Label, clearance_gap, label_gap
from egide.security.levels import LevelScheme
from egide.security.markings import ParsedMarking, parse_detail

Rule = Literal["banner", "portion", "line"]

_MARK = "[\u0300-\u036f]?"  # a combining accent, for text in decomposed (NFD) form
_VARIANTS = {"A": "AÀÂÄ", "E": "EÉÈÊË", "I": "IÎÏ", "O": "OÔÖ", "U": "UÙÛÜ", "C": "CÇ"}
_GAP = r"[ \t\r\n\-\u2010-\u2015_]+"
_SF = r"(?:SF|SP[EÉ]" + _MARK + r"CIAL[ \-]+FRANCE)"
_CODE = r"[A-Z]{2,8}"
_REL = (
    r"(?:REL(?:EASABLE)?(?: +TO)?|DIFFUSION +LIMIT[EÉ]" + _MARK + r"E +(?:[AÀ]" + _MARK + r"|AUX))"
    rf" +{_CODE}(?: *[,/] *{_CODE}| +{_CODE})*"
)
_COMP = r"[A-Z0-9][A-Z0-9_\-]*"
_SEG = rf" *// *(?:{_REL}|{_SF}(?![\w])|{_COMP}(?: *, *{_COMP}|/(?!/){_COMP})*)"
_TAIL = rf"(?:[ \-]+{_SF}(?![\w]))?(?: +{_REL})?(?:{_SEG})*"
_REQUIRED_TAIL = rf"(?:[ \-]+{_SF}(?![\w])(?:{_SEG})*|(?:{_SEG})+)"
_PORTION = re.compile(r"(?<![\w])\([ \t]*([^()\n]{1,120}?)[ \t]*\)")
_DECOR = " \t*#_=\\-|:>."


def _fuzzy(spelling: str) -> str:
    words = []
    for word in spelling.split(" "):
        chars = (f"[{_VARIANTS[c]}]{_MARK}" if c in _VARIANTS else re.escape(c) for c in word)
        words.append("".join(chars))
    return _GAP.join(words)


def _is_short(words: tuple[str, ...] | str) -> bool:
    return len("".join(words)) <= 3


@lru_cache(maxsize=32)
def _patterns(scheme: LevelScheme) -> tuple[re.Pattern[str], re.Pattern[str]]:
    spellings = sorted(scheme.spellings(), key=len, reverse=True)
    long = "|".join(_fuzzy(s) for s in spellings if not _is_short(s.replace(" ", "")))
    short = "|".join(re.escape(s) for s in spellings if _is_short(s.replace(" ", "")))
    banner = re.compile(rf"(?<![\w/])(?P<level>{long}){_TAIL}(?![\w])")
    coded = re.compile(rf"(?<![\w/])(?P<level>{short}){_REQUIRED_TAIL}(?![\w])")
    return banner, coded


@dataclass(frozen=True)
class MarkingMatch:
    """A marking found in a text: its label, where it is, and the rule that found it."""

    label: Label
    start: int
    end: int
    line: int
    column: int
    rule: Rule


@dataclass(frozen=True)
class Finding:
    """A marking that must not pass; ``reason`` never quotes the text."""

    label: Label
    start: int
    end: int
    line: int
    column: int
    reason: str


def _parse(text: str, scheme: LevelScheme) -> ParsedMarking | None:
    try:
        return parse_detail(text, scheme)
    except MarkingError:
        return None


def _candidates(text: str, scheme: LevelScheme) -> list[tuple[int, int, Label, Rule]]:
    found: list[tuple[int, int, Label, Rule]] = []
    for pattern in _patterns(scheme):
        for m in pattern.finditer(text):
            parsed = _parse(m.group(0), scheme)
            if parsed is None:  # an odd tail: keep the level, which parses on its own
                parsed = _parse(m.group("level"), scheme)
            if parsed is not None:
                found.append((m.start(), m.end(), parsed.label, "banner"))
    for m in _PORTION.finditer(text):
        inner = m.group(1)
        parsed = _parse(inner, scheme)
        if parsed is None or not (inner == inner.upper() or "//" in inner):
            continue
        legacy_code = _is_short(parsed.level_words) and parsed.level_words != (
            parsed.label.level.code,
        )
        if legacy_code and not parsed.has_caveat:
            continue
        found.append((m.start(), m.end(), parsed.label, "portion"))
    offset = 0
    for raw in text.splitlines(keepends=True):
        content = raw.strip(_DECOR + "\r\n")
        if content and len(content) <= 160:
            parsed = _parse(content, scheme)
            if parsed is not None and (parsed.has_caveat or not _is_short(parsed.level_words)):
                start = offset + raw.index(content)
                found.append((start, start + len(content), parsed.label, "line"))
        offset += len(raw)
    return found


def scan(text: str, scheme: LevelScheme) -> list[MarkingMatch]:
    """Every marking in ``text``, in order, without overlaps (see the module rules)."""
    matches: list[MarkingMatch] = []
    last_end = 0
    for start, end, label, rule in sorted(_candidates(text, scheme), key=lambda c: (c[0], -c[1])):
        if start < last_end:
            continue
        line = text.count("\n", 0, start) + 1
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        matches.append(MarkingMatch(label, start, end, line, column, rule))
        last_end = end
    return matches


def _where(m: MarkingMatch) -> str:
    return f"line {m.line}, column {m.column} (characters {m.start}-{m.end})"


def _describe(label: Label) -> str:
    text = f"{label.level.code} ({label.level.name_en})"
    if label.compartments:
        text += f" with {len(label.compartments)} compartment(s)"
    if label.releasable_to is not None:
        text += " with a releasability restriction"
    return text


def check_input(text: str, working_label: Label) -> list[Finding]:
    """Markings in ``text`` that the working label does not dominate (would be spilled)."""
    return _findings(
        text,
        working_label.scheme,
        lambda label: label_gap(working_label, label),
        f"above the working label {working_label.level.code}",
    )


def check_output(text: str, clearance: Clearance) -> list[Finding]:
    """Markings in ``text`` that ``clearance`` does not dominate (to withhold from the reader)."""
    return _findings(
        text,
        clearance.level.scheme,
        lambda label: clearance_gap(clearance, label),
        "not readable with the caller's clearance",
    )


def _findings(
    text: str,
    scheme: LevelScheme,
    gap_of: Callable[[Label], tuple[str, str] | None],
    why: str,
) -> list[Finding]:
    findings = []
    for m in scan(text, scheme):
        gap = gap_of(m.label)
        if gap is not None:
            reason = f"marking at {_where(m)} is {_describe(m.label)}, {why}: {gap[1]}"
            findings.append(Finding(m.label, m.start, m.end, m.line, m.column, reason))
    return findings
