"""Text → BM25 terms, for French and English alike.

The steps, in order: Unicode compatibility folding, lowercase, accents dropped
(``é`` → ``e``, ``œ`` → ``oe``); words are runs of letters and digits that may be joined by
apostrophes or hyphens. A French elision (``l'``, ``d'``, ``qu'``, ``jusqu'`` …) and an
English possessive (``'s``) are dropped; other apostrophes split. Hyphens split a word
into its parts (``porte-avions`` → ``porte``, ``avion``); when the word holds a digit it is
a code and is also kept whole without its hyphens (``AB-123`` → ``ab123``, ``ab``, ``123``,
so that ``AB-123`` and ``AB123`` match). Stopwords of both languages and single letters
are dropped. A light stemmer strips plurals the way both languages form them (``-s``,
``-x``, ``-aux`` → ``-al``, ``-ies``/``-y`` → ``-i``) and a trailing ``e`` after ``ch``,
``sh``, ``ss`` or ``x`` (``recherches``/``recherche`` → ``recherch``, ``matches``/``match``
→ ``match``). Words with digits are never stemmed. The same function analyses documents
and queries, so a rule only has to be consistent, not linguistically perfect.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_FOLD = str.maketrans(
    {
        "œ": "oe",
        "Œ": "oe",
        "æ": "ae",
        "Æ": "ae",
        "’": "'",
        "ʼ": "'",
        "‘": "'",
        "`": "'",
        "‐": "-",
        "‑": "-",
    }
)
_COMBINING = re.compile(r"[\u0300-\u036f]")
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")

_ELISIONS = "l d qu j n s c m t jusqu lorsqu puisqu quoiqu presqu quelqu"
ELISIONS = frozenset(_ELISIONS.split())

_STOPWORDS = """
    a an and are as at be been but by for from has have he her his i if in into is it its
    me my no nor not of on or our she so such than that the their them then there these
    they this those to was we were what when where which while who whom why will with
    would you your yours do does did done can could should may might must shall also
    about after again all am any because before being below between both during each few
    further here how more most other out over own same some too under until up very
    au aux avec ce ces cet cette dans de des du elle elles en et eux il ils je la le les
    leur leurs lui ma mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que
    qui sa se ses son sur ta te tes toi ton tu un une vos votre vous est sont ete etre
    avoir ont sans sous entre vers chez donc car ni si aussi comme plus moins tres tout
    tous toute toutes cela ceci celle celui ceux dont lors alors ainsi etait etaient fait
    sera seront avait avaient peut peuvent
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def fold(text: str) -> str:
    """Lowercase, compatibility-fold and strip accents (``Œuvre Élysée`` → ``oeuvre elysee``)."""
    text = text.translate(_FOLD).lower()
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def analyse(text: str) -> list[str]:
    """The BM25 terms of ``text``, in order, repeats kept."""
    terms: list[str] = []
    for word in _WORD.findall(fold(text)):
        terms.extend(_word_terms(word))
    return terms


@lru_cache(maxsize=262_144)
def _word_terms(word: str) -> tuple[str, ...]:
    parts = word.split("'")
    if len(parts) > 1 and parts[0] in ELISIONS:
        parts = parts[1:]
    if len(parts) > 1 and parts[-1] == "s":
        parts = parts[:-1]
    out: list[str] = []
    for part in parts:
        pieces = [p for p in part.split("-") if p]
        if len(pieces) > 1 and any(c.isdigit() for c in part):
            out.append("".join(pieces))
        out.extend(_term(p) for p in pieces if _kept(p))
    return tuple(out)


def _kept(piece: str) -> bool:
    return piece not in STOPWORDS and (len(piece) > 1 or piece.isdigit())


def _term(piece: str) -> str:
    return piece if any(c.isdigit() for c in piece) else stem(piece)


def stem(word: str) -> str:
    """Light plural stripping shared by French and English (see the module docstring)."""
    if len(word) <= 3:
        return word
    if word.endswith("eaux"):
        word = word[:-1]
    elif word.endswith("aux") and len(word) > 4:
        word = word[:-3] + "al"
    elif word.endswith(("eux", "oux")) or (
        word.endswith("s") and not word.endswith(("ss", "us", "is"))
    ):
        word = word[:-1]
    if word.endswith("ie") and len(word) > 3:
        word = word[:-1]
    elif word.endswith("y") and len(word) > 3:
        word = word[:-1] + "i"
    elif word.endswith(("che", "she", "sse", "xe")):
        word = word[:-1]
    return word
