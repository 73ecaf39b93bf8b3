"""The streaming output filter: prose flows word by word; a marking split across chunks
is never partly sent."""

from __future__ import annotations

import pytest

from egide.gateway.labels import WITHHELD, LabelGuard
from egide.security.labels import Clearance, Label
from egide.security.levels import FRENCH
from egide.security.policy import Principal, Role
from egide.store.keys import KeyRecord
from egide.tenancy import Caller

DR = FRENCH.level("DR")


class Audit:
    def __init__(self) -> None:
        self.events: list[object] = []

    def append(self, event: object) -> None:
        self.events.append(event)


def _filter():
    audit = Audit()
    guard = LabelGuard(FRENCH, Label(DR), audit)  # type: ignore[arg-type]
    principal = Principal("u", ("org",), frozenset({Role.USER}), Clearance(DR, frozenset(), "FRA"))
    key = KeyRecord("k", "egk_", "user", "u", None, None, None, None)
    return guard.output_filter(Caller(principal, key, "org")), audit


def test_prose_is_released_word_by_word() -> None:
    out, _ = _filter()
    sent = [out.feed(piece) for piece in ("Le convoi ", "part demain ", "à l'aube", ".")]
    # Whole words go at once; "à" (a caveat word) and the unfinished "l'aube" wait.
    assert sent[:3] == ["Le convoi ", "part demain ", ""]
    assert "".join(sent) + out.finish() == "Le convoi part demain à l'aube."


@pytest.mark.parametrize("split", [1, 3, 7])
def test_a_marking_split_across_chunks_is_never_partly_sent(split: int) -> None:
    out, audit = _filter()
    text = "Rapport du jour : TRÈS SECRET DÉFENSE // ALPHA — fin du rapport normal."
    pieces = [text[i : i + split] for i in range(0, len(text), split)]
    sent = "".join(out.feed(p) for p in pieces) + out.finish()
    assert out.withheld and "SECRET" not in sent and "TRÈS" not in sent
    assert sent.startswith("Rapport du jour")
    assert len(audit.events) == 1


def test_whole_answers() -> None:
    out, _ = _filter()
    assert out.whole("Tout va bien.") == "Tout va bien."
    out, _ = _filter()
    assert out.whole("Extrait : SECRET SPÉCIAL FRANCE") == WITHHELD
