"""Libraries: create, list, read, change and delete, each decided by the policy engine."""

from __future__ import annotations

from dataclasses import dataclass, replace

from egide.audit.events import KnowledgeChange, utc_now
from egide.errors import Conflict, InvalidRequest
from egide.rag.access import Library, LibraryAccess
from egide.security.actions import Action
from egide.security.labels import Label
from egide.security.markings import render_compact
from egide.security.policy import over_ceiling
from egide.store.documents import DocumentRepository
from egide.store.libraries import LibraryRecord, LibraryRepository, LibraryStats, new_id
from egide.tenancy import Caller

_NO_STATS = LibraryStats(0, 0)


@dataclass(frozen=True)
class Sharing:
    """Who may read or write a library: an organisation's subtree (None: every
    organisation) narrowed to holders of ``compartments``."""

    org_id: str | None
    compartments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LibrarySpec:
    """What a caller asks for when creating or changing a library (None: keep/default)."""

    name: str | None = None
    description: str | None = None
    chunk_size: int | None = None
    owner_org: str | None = None
    ceiling: str | None = None
    readers: Sharing | None = None
    writers: Sharing | None = None


@dataclass(frozen=True)
class LibraryView:
    library: Library
    stats: LibraryStats


class LibraryService:
    def __init__(
        self, repo: LibraryRepository, docs: DocumentRepository, access: LibraryAccess
    ) -> None:
        self.repo = repo
        self.docs = docs
        self.access = access

    def open(self, caller: Caller, library_id: str, action: Action) -> Library:
        """The library, if ``caller`` may do ``action`` on it (decision recorded)."""
        library = self.access.library(self.repo.get(library_id))
        self.access.enforce(caller.principal, action, library, caller.request_id)
        return library

    def create(self, caller: Caller, spec: LibrarySpec) -> LibraryView:
        if not spec.name or not spec.name.strip():
            raise InvalidRequest("a library needs a non-empty 'name'", param="name")
        p = caller.principal
        owner = spec.owner_org if spec.owner_org is not None else caller.org_id
        ceiling = self._ceiling(spec.ceiling, caller)
        now = utc_now()
        readers = spec.readers or Sharing(owner)
        writers = spec.writers or Sharing(owner)
        record = LibraryRecord(
            id=new_id(),
            name=spec.name.strip(),
            description=spec.description,
            owner_org=owner,
            created_by=p.user_id,
            ceiling=render_compact(ceiling),
            read_org=readers.org_id,
            read_compartments=readers.compartments,
            write_org=writers.org_id,
            write_compartments=writers.compartments,
            chunk_size=spec.chunk_size,
            created_at=now,
            updated_at=now,
        )
        library = self.access.library(record)  # resolves every organisation (404 if unknown)
        for org_id in {owner, readers.org_id, writers.org_id}:
            shared = replace(record, owner_org=org_id)
            self.access.enforce(
                p, Action.LIBRARY_CREATE, self.access.library(shared), caller.request_id
            )
        self.repo.create(record)
        self._changed(caller, "library-created", library, f"created {record.name!r}")
        return LibraryView(library, _NO_STATS)

    def _ceiling(self, text: str | None, caller: Caller) -> Label:
        if text:
            return self.access.label(text)
        # Default: the highest level both the instance and the creator may hold.
        instance = self.access.ceiling.level
        mine = caller.principal.clearance.level
        return Label(instance if instance.rank <= mine.rank else mine)

    def list(self, caller: Caller) -> list[LibraryView]:
        p = caller.principal
        stats = self.repo.stats()
        views = []
        for record in self.repo.all():
            library = self.access.library(record)
            if any(
                self.access.decide(p, action, library).allowed
                for action in (Action.LIBRARY_READ, Action.LIBRARY_MANAGE)
            ):
                views.append(LibraryView(library, stats.get(record.id, _NO_STATS)))
        return views

    def get(self, caller: Caller, library_id: str) -> LibraryView:
        library = self.access.library(self.repo.get(library_id))
        p = caller.principal
        action = Action.LIBRARY_READ
        if not self.access.decide(p, action, library).allowed:
            action = Action.LIBRARY_MANAGE
        self.access.enforce(p, action, library, caller.request_id)
        return LibraryView(library, self.repo.stats().get(library_id, _NO_STATS))

    def update(self, caller: Caller, library_id: str, spec: LibrarySpec) -> LibraryView:
        library = self.open(caller, library_id, Action.LIBRARY_MANAGE)
        record = library.record
        if spec.name is not None and not spec.name.strip():
            raise InvalidRequest("'name' may not be empty", param="name")
        changed = replace(
            record,
            name=(spec.name or record.name).strip(),
            description=spec.description if spec.description is not None else record.description,
            chunk_size=spec.chunk_size if spec.chunk_size is not None else record.chunk_size,
            updated_at=utc_now(),
        )
        if spec.ceiling is not None:
            ceiling = self.access.label(spec.ceiling)
            self._ceiling_fits(library_id, ceiling)
            changed = replace(changed, ceiling=render_compact(ceiling))
        if spec.readers is not None:
            changed = replace(
                changed,
                read_org=spec.readers.org_id,
                read_compartments=spec.readers.compartments,
            )
        if spec.writers is not None:
            changed = replace(
                changed,
                write_org=spec.writers.org_id,
                write_compartments=spec.writers.compartments,
            )
        new = self.access.library(changed)
        if changed.ceiling != record.ceiling or spec.readers or spec.writers:
            # Widening who reads, or raising the ceiling, is creating anew: same rule.
            for org_id in {changed.read_org, changed.write_org, changed.owner_org}:
                probe = self.access.library(replace(changed, owner_org=org_id))
                self.access.enforce(
                    caller.principal, Action.LIBRARY_CREATE, probe, caller.request_id
                )
        self.repo.update(changed)
        self._changed(caller, "library-updated", new, "settings changed")
        return LibraryView(new, self.repo.stats().get(library_id, _NO_STATS))

    def _ceiling_fits(self, library_id: str, ceiling: Label) -> None:
        for doc in self.docs.in_library(library_id):
            if over_ceiling(ceiling, self.access.label(doc.label)) is not None:
                raise Conflict(
                    f"the library holds documents above the new ceiling "
                    f"{render_compact(ceiling)} (e.g. document {doc.id}); relabel or delete "
                    "them first",
                    param="ceiling",
                )

    def delete(self, caller: Caller, library_id: str) -> Library:
        library = self.open(caller, library_id, Action.LIBRARY_MANAGE)
        removed = self.repo.delete(library_id)
        self._changed(caller, "library-deleted", library, f"deleted with {removed} document(s)")
        return library

    def _changed(self, caller: Caller, kind: str, library: Library, summary: str) -> None:
        p = caller.principal
        self.access.audit.append(
            KnowledgeChange(
                actor=p.user_id,
                org_path="/".join(p.org_path),
                request_id=caller.request_id,
                kind=kind,  # type: ignore[arg-type]
                library=library.id,
                label=library.record.ceiling,
                summary=summary,
            )
        )
