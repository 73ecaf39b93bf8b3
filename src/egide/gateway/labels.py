"""Labels on every inference: the working label, the model's label, the instance ceiling,
and the spillage guard on what goes in and what comes out.

Deterministic code, never the model: a request is decided before the model sees it, and
an answer carrying a marking above the caller's clearance is withheld whatever the model
wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from egide.audit.events import Decision as DecisionEvent
from egide.audit.events import SpillageRefused as SpillageRefusedEvent
from egide.audit.events import SpillageWithheld
from egide.audit.log import AuditLog
from egide.config import ModelConfig
from egide.errors import PermissionDenied, SpillageRefused
from egide.protocol.requests import ChatRequest
from egide.security.actions import Action
from egide.security.labels import Clearance, Label, bottom
from egide.security.levels import LevelScheme, normalize
from egide.security.markings import parse_marking
from egide.security.markings import render_compact as render
from egide.security.policy import Resource, decide
from egide.security.spillage import check_input, check_output
from egide.tenancy import Caller

WITHHELD = (
    "[Égide: this answer was withheld: it carried a classification marking above your "
    "clearance. The event is recorded in the audit log.]"
)
_TAIL = 96  # longer than any marking: how far back a new scan starts
_TOKEN = re.compile(r"\S+")
_CAVEAT_WORDS = frozenset(
    {
        "SF",
        "SPECIAL",
        "FRANCE",
        "REL",
        "TO",
        "RELEASABLE",
        "DIFFUSION",
        "LIMITEE",
        "A",
        "AUX",
        "NONE",
        "AUCUN",
    }
)


def _marking_like(token: str, vocabulary: frozenset[str]) -> bool:
    """Could this word be part of a marking? Level and caveat words in any case, words in
    capitals (codes, compartments, "(S)"), and the "//" separator."""
    if "//" in token:
        return True
    # "Très-Secret", "SECRET/SF": any word of a compound that is a level or caveat word.
    if any(w in vocabulary for w in normalize(re.sub(r"[^\w\s-]", " ", token)).split()):
        return True
    letters = [c for c in token if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


@dataclass(frozen=True)
class Cleared:
    """A request that passed the label checks."""

    working: Label
    answer: Label  # join of the working label and the model's

    @property
    def header(self) -> str:
        return render(self.answer)


class LabelGuard:
    def __init__(self, scheme: LevelScheme, ceiling: Label, audit: AuditLog) -> None:
        self.scheme = scheme
        self.ceiling = ceiling
        self.audit = audit
        self._model_labels: dict[str, Label] = {}
        # A model owned by an organisation (a fine-tuned one) is for that subtree only.
        self.model_scopes: dict[str, tuple[str, ...]] = {}
        self.vocabulary = (
            frozenset(word for spelling in scheme.spellings() for word in spelling.split())
            | _CAVEAT_WORDS
        )

    def model_label(self, model: ModelConfig) -> Label:
        if model.id not in self._model_labels:
            self._model_labels[model.id] = (
                parse_marking(model.label, self.scheme) if model.label else bottom(self.scheme)
            )
        return self._model_labels[model.id]

    def clear(
        self, caller: Caller, action: Action, model: ModelConfig, marking: str | None
    ) -> Cleared:
        """Decide the request (role, key scope, ceiling, clearance) on the join of its
        working label and the model's label; record the decision."""
        working = parse_marking(marking, self.scheme) if marking else bottom(self.scheme)
        answer = working.join(self.model_label(model))
        resource = self._resource(model, answer)
        decision = decide(caller.principal, action, resource, ceiling=self.ceiling)
        self.audit.append(
            DecisionEvent(
                actor=caller.principal.user_id,
                request_id=caller.request_id,
                org_path="/".join(caller.principal.org_path),
                action=action.value,
                resource=f"model:{model.id}@{render(answer)}",
                allowed=decision.allowed,
                reason=decision.reason,
            )
        )
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        return Cleared(working, answer)

    def header(self, model: ModelConfig) -> str:
        """The model's own label as ``X-Egide-Label`` renders it."""
        return render(self.model_label(model))

    def may_use(self, caller: Caller, model: ModelConfig) -> bool:
        """Whether the caller may use ``model`` at all (what ``/v1/models`` lists)."""
        resource = self._resource(model, self.model_label(model))
        decision = decide(caller.principal, Action.USE_MODEL, resource, ceiling=self.ceiling)
        return decision.allowed

    def _resource(self, model: ModelConfig, label: Label) -> Resource:
        """The model as policy sees it: its owner's branch (if any) and ``label``."""
        return Resource("model", self.model_scopes.get(model.id, ()), label=label, model=model.id)

    def check_prompt(self, caller: Caller, request: ChatRequest, cleared: Cleared) -> None:
        """Refuse input that carries a marking above the working label (the text is never
        repeated: the reason says which level and where)."""
        for index, message in enumerate(request.messages):
            findings = check_input(message.text(), cleared.working)
            if findings:
                first = findings[0]
                self.audit.append(
                    SpillageRefusedEvent(
                        actor=caller.principal.user_id,
                        request_id=caller.request_id,
                        org_path="/".join(caller.principal.org_path),
                        direction="input",
                        level=first.label.level.code,
                        position=first.start,
                    )
                )
                raise SpillageRefused(
                    f"messages[{index}]: {first.reason}; raise the request's working label "
                    "(header X-Egide-Label) if you are cleared for it, or remove the marked "
                    "passage",
                    param=f"messages.{index}.content",
                )

    def output_filter(self, caller: Caller) -> OutputFilter:
        return OutputFilter(caller, self.audit, self.vocabulary)


class OutputFilter:
    """Withholds an answer that carries a marking the caller may not read. Streaming text
    is held back by a short tail so that a marking is detected before any of it is sent."""

    def __init__(self, caller: Caller, audit: AuditLog, vocabulary: frozenset[str]) -> None:
        self.vocabulary = vocabulary
        self.caller = caller
        self.clearance: Clearance = caller.principal.clearance
        self.audit = audit
        self.text = ""
        self.sent = 0
        self.checked = 0
        self.withheld = False

    def whole(self, text: str) -> str:
        """A complete answer: itself, or the withheld notice."""
        self.text = text
        return WITHHELD if self._blocked() else text

    def feed(self, piece: str) -> str:
        """Streamed text: what may be sent now ("" while holding back)."""
        if self.withheld:
            return ""
        self.text += piece
        if self._blocked():
            return ""
        safe = max(self.sent, self._safe_end())
        out, self.sent = self.text[self.sent : safe], safe
        return out

    def _safe_end(self) -> int:
        """Where the text may be cut for sending: before the trailing words that could
        still be (the start of) a marking, and before the last, unfinished word."""
        end = len(self.text)
        tokens = list(_TOKEN.finditer(self.text, self.sent))
        if tokens and tokens[-1].end() == end:  # the last word may still grow
            end = tokens.pop().start()
        while tokens and _marking_like(tokens[-1].group(), self.vocabulary):
            end = tokens.pop().start()
        return end

    def finish(self) -> str:
        """The rest of a stream once it ended (or nothing if it was withheld)."""
        if self.withheld or self._blocked():
            return ""
        out, self.sent = self.text[self.sent :], len(self.text)
        return out

    def _blocked(self) -> bool:
        if self.withheld:
            return True
        # Only the new text needs scanning, from the start of the line where the last
        # scan ended minus the tail (a marking is short; the line rule needs whole lines).
        start = self.text.rfind("\n", 0, max(0, self.checked - _TAIL)) + 1
        findings = check_output(self.text[start:], self.clearance)
        self.checked = len(self.text)
        if not findings:
            return False
        self.withheld = True
        self.audit.append(
            SpillageWithheld(
                actor=self.caller.principal.user_id,
                request_id=self.caller.request_id,
                org_path="/".join(self.caller.principal.org_path),
                level=findings[0].label.level.code,
                position=start + findings[0].start,
            )
        )
        return True
