"""Who may do what with a library, as decisions of the policy engine.

A library belongs to an organisation and is shared for reading with one subtree and for
writing with another (each possibly narrowed to holders of some compartments). Its
*ceiling* bounds the labels of its documents. What a reader gets out of a library is
further limited chunk by chunk by their clearance: that filter is in the search itself
(:mod:`egide.rag.retrieval`).
"""

from __future__ import annotations

from dataclasses import dataclass

from egide.audit.events import Decision as DecisionEvent
from egide.audit.log import AuditLog
from egide.errors import PermissionDenied
from egide.security.actions import Action
from egide.security.labels import Clearance, Label, bottom
from egide.security.levels import LevelScheme
from egide.security.markings import parse_marking, render_compact
from egide.security.policy import Decision, Principal, Resource, Role, decide, over_ceiling
from egide.store.libraries import LibraryRecord
from egide.store.orgs import OrgRepository


@dataclass(frozen=True)
class Library:
    """A library with its labels parsed and its organisations resolved to paths."""

    record: LibraryRecord
    ceiling: Label
    owner_path: tuple[str, ...]
    read_path: tuple[str, ...]
    write_path: tuple[str, ...]
    read_label: Label  # the lowest level with the readers' compartments
    write_label: Label

    @property
    def id(self) -> str:
        return self.record.id

    def resource(self, action: Action, label: Label | None = None) -> Resource:
        """The policy resource for ``action`` (``label``: a document's, for writes)."""
        if action is Action.LIBRARY_READ:
            return Resource("library", self.read_path, self.read_label, owner=self.created_by)
        if action is Action.LIBRARY_WRITE:
            joined = self.write_label if label is None else label.join(self.write_label)
            return Resource("library", self.write_path, joined, owner=self.created_by)
        if action is Action.LIBRARY_CREATE:
            return Resource("library", self.owner_path, self.ceiling, owner=self.created_by)
        return Resource("library", self.owner_path, None, owner=self.created_by)

    @property
    def created_by(self) -> str:
        return self.record.created_by


class LibraryAccess:
    """Library decisions, each recorded as a ``decision`` audit event when enforced."""

    def __init__(
        self, scheme: LevelScheme, ceiling: Label, orgs: OrgRepository, audit: AuditLog
    ) -> None:
        self.scheme = scheme
        self.ceiling = ceiling
        self.orgs = orgs
        self.audit = audit
        self._paths: dict[str, tuple[str, ...]] = {}

    def path(self, org_id: str | None) -> tuple[str, ...]:
        """An organisation's lineage (``()`` = platform-wide); organisations never move."""
        if org_id is None:
            return ()
        if org_id not in self._paths:
            self._paths[org_id] = self.orgs.get(org_id).lineage
        return self._paths[org_id]

    def label(self, text: str) -> Label:
        return parse_marking(text, self.scheme)

    def library(self, record: LibraryRecord) -> Library:
        low = bottom(self.scheme)
        return Library(
            record=record,
            ceiling=self.label(record.ceiling),
            owner_path=self.path(record.owner_org),
            read_path=self.path(record.read_org),
            write_path=self.path(record.write_org),
            read_label=Label(low.level, record.read_compartments),
            write_label=Label(low.level, record.write_compartments),
        )

    def decide(
        self, principal: Principal, action: Action, library: Library, label: Label | None = None
    ) -> Decision:
        return decide(principal, action, library.resource(action, label), ceiling=self.ceiling)

    def enforce(
        self,
        principal: Principal,
        action: Action,
        library: Library,
        request_id: str,
        label: Label | None = None,
    ) -> Decision:
        """Decide, record the decision, and raise ``PermissionDenied`` on a refusal."""
        decision = self.decide(principal, action, library, label)
        if decision.allowed and label is not None and action is Action.LIBRARY_WRITE:
            gap = over_ceiling(library.ceiling, label)
            if gap is not None:
                decision = Decision(
                    False,
                    f"library ceiling: the document's label {render_compact(label)} is above "
                    f"the library's ceiling {render_compact(library.ceiling)} ({gap[1]})",
                    action,
                    principal.user_id,
                    "library-ceiling",
                    decision.resource,
                )
        what = f"library:{library.id}" + (f"@{render_compact(label)}" if label else "")
        self.record(principal, request_id, decision, what)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        return decision

    def record(self, principal: Principal, request_id: str, decision: Decision, what: str) -> None:
        self.audit.append(
            DecisionEvent(
                actor=principal.user_id,
                org_path="/".join(principal.org_path),
                request_id=request_id,
                action=decision.action.value,
                resource=what,
                allowed=decision.allowed,
                reason=decision.reason,
            )
        )

    def label_decision(self, principal: Principal, label: Label) -> Decision:
        """May ``principal`` read data labelled ``label`` on this instance? The ceiling and
        the clearance only: the role and the library were decided before."""
        reader = Principal(principal.user_id, (), frozenset({Role.USER}), principal.clearance)
        return decide(
            reader, Action.LIBRARY_READ, Resource("chunk", (), label), ceiling=self.ceiling
        )

    def readable(self, clearance: Clearance, label: Label) -> bool:
        reader = Principal("reader", (), frozenset({Role.USER}), clearance)
        return self.label_decision(reader, label).allowed
