"""Documents of a library: upload (parse, check markings, chunk, store), list, read,
relabel and delete.

An upload is checked completely before anything is stored: the caller may write the
library, the document's label is within the caller's clearance, the library's ceiling and
the instance ceiling, and it dominates every marking found in the document. A refused
upload leaves nothing behind. Embedding happens afterwards, in the ingestion worker.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from egide.audit.events import KnowledgeChange, utc_now
from egide.audit.events import SpillageRefused as SpillageRefusedEvent
from egide.errors import InvalidRequest, PermissionDenied, SpillageRefused
from egide.rag.access import Library, LibraryAccess
from egide.rag.chunking import chunk_document
from egide.rag.parsing import Limits, parse
from egide.security.actions import Action
from egide.security.labels import Label, bottom
from egide.security.markings import render_compact
from egide.security.spillage import check_input
from egide.store.documents import DocumentRecord, DocumentRepository, NewChunk
from egide.store.libraries import new_id
from egide.tenancy import Caller

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    content_type: str | None = None
    label: str | None = None


class DocumentService:
    def __init__(
        self,
        docs: DocumentRepository,
        access: LibraryAccess,
        count_tokens: CountTokens,
        limits: Limits,
        max_tokens: int,
        wake: Callable[[str], None],
        lease_s: float = 30.0,
    ) -> None:
        self.lease_s = lease_s
        self.docs = docs
        self.access = access
        self.count_tokens = count_tokens
        self.limits = limits
        self.max_tokens = max_tokens
        self.wake = wake

    def upload(self, caller: Caller, library: Library, upload: Upload) -> DocumentRecord:
        """Check and store one document (``library`` is already open for writing)."""
        p = caller.principal
        label = self.access.label(upload.label) if upload.label else bottom(self.access.scheme)
        self.access.enforce(p, Action.LIBRARY_WRITE, library, caller.request_id, label)
        name = os.path.basename(upload.filename.replace("\\", "/")).strip()
        if not name:
            raise InvalidRequest("the uploaded file needs a file name", param="file")
        parsed = parse(name, upload.data, content_type=upload.content_type, limits=self.limits)
        self._markings_within(caller, parsed.full_text, label, name)
        chunks = chunk_document(parsed, self.count_tokens, max_tokens=self.max_tokens)
        if not chunks:
            raise InvalidRequest(f"{name} contains no text to index", param="file")
        sha = hashlib.sha256(upload.data).hexdigest()
        ext = name.rsplit(".", 1)[1].lower() if "." in name else None
        record = DocumentRecord(
            id=new_id(),
            library_id=library.id,
            name=name,
            mime_type=parsed.mime_type,
            extension=ext,
            size=len(upload.data),
            sha256=sha,
            label=render_compact(label),
            pages=parsed.pages,
            uploaded_by=p.user_id,
            status="in_progress",
            error=None,
            chunks_total=len(chunks),
            chunks_done=0,
            tokens=0,
            attributes={"title": parsed.title} if parsed.title else {},
            created_at=utc_now(),
            processed_at=None,
        )
        rows = [NewChunk(c.index, c.page, c.headings, c.text, c.tokens) for c in chunks]
        self.docs.add(record, rows, self.lease_s)
        self.changed(caller, "document-added", record, f"{len(rows)} chunk(s) to index")
        self.wake(record.id)
        return record

    def _markings_within(self, caller: Caller, text: str, label: Label, name: str) -> None:
        findings = check_input(text, label)
        if not findings:
            return
        first = findings[0]
        p = caller.principal
        self.access.audit.append(
            SpillageRefusedEvent(
                actor=p.user_id,
                org_path="/".join(p.org_path),
                request_id=caller.request_id,
                direction="input",
                level=first.label.level.code,
                position=first.start,
            )
        )
        raise SpillageRefused(
            f"{name}: {first.reason} ({len(findings)} such marking(s)); upload it with a label "
            "that dominates every marking in it (form field 'label' or header X-Egide-Label), "
            "into a library whose ceiling allows it — nothing of it was stored",
            param="label",
        )

    def readable(self, caller: Caller, doc: DocumentRecord) -> bool:
        return self.access.readable(caller.principal.clearance, self.access.label(doc.label))

    def open(self, caller: Caller, library: Library, document_id: str) -> DocumentRecord:
        """A document the caller may read (``library`` is already open for reading)."""
        doc = self.docs.get(document_id, library.id)
        decision = self.access.label_decision(caller.principal, self.access.label(doc.label))
        if not decision.allowed:
            what = f"document:{doc.id}@{doc.label}"
            self.access.record(caller.principal, caller.request_id, decision, what)
            raise PermissionDenied(decision.reason)
        return doc

    def listing(self, caller: Caller, library: Library) -> list[DocumentRecord]:
        return [d for d in self.docs.in_library(library.id) if self.readable(caller, d)]

    def rename(
        self,
        caller: Caller,
        library: Library,
        document_id: str,
        name: str | None,
        attributes: dict[str, Any] | None,
    ) -> DocumentRecord:
        doc = self.docs.get(document_id, library.id)
        label = self.access.label(doc.label)
        self.access.enforce(
            caller.principal, Action.LIBRARY_WRITE, library, caller.request_id, label
        )
        if name is None and attributes is None:
            return doc
        self.docs.rename(
            doc.id,
            name.strip() if name else doc.name,
            attributes if attributes is not None else doc.attributes,
        )
        return self.docs.get(doc.id)

    def delete(self, caller: Caller, library: Library, document_id: str) -> DocumentRecord:
        doc = self.docs.get(document_id, library.id)
        label = self.access.label(doc.label)
        self.access.enforce(
            caller.principal, Action.LIBRARY_WRITE, library, caller.request_id, label
        )
        self.docs.delete(doc.id)
        self.changed(caller, "document-deleted", doc, "deleted with its chunks and vectors")
        return doc

    def relabel(
        self, caller: Caller, library: Library, document_id: str, marking: str
    ) -> DocumentRecord:
        """Give a document a new label: the caller must be cleared for the old and the new,
        the new must fit the library, and it must still dominate every marking inside."""
        doc = self.docs.get(document_id, library.id)
        old, new = self.access.label(doc.label), self.access.label(marking)
        p = caller.principal
        self.access.enforce(p, Action.LIBRARY_WRITE, library, caller.request_id, old.join(new))
        self.access.enforce(p, Action.LIBRARY_WRITE, library, caller.request_id, new)
        text = "\n\n".join(c.text for c in self.docs.text_of(doc.id))
        self._markings_within(caller, text, new, doc.name)
        self.docs.relabel(doc.id, render_compact(new))
        moved = self.docs.get(doc.id)
        self.changed(caller, "document-relabelled", moved, f"relabelled from {doc.label}")
        return moved

    def changed(self, caller: Caller | None, kind: str, doc: DocumentRecord, summary: str) -> None:
        p = caller.principal if caller else None
        self.access.audit.append(
            KnowledgeChange(
                actor=p.user_id if p else "egide-ingest",
                org_path="/".join(p.org_path) if p else "",
                request_id=caller.request_id if caller else "",
                kind=kind,  # type: ignore[arg-type]
                library=doc.library_id,
                document=doc.id,
                label=doc.label,
                sha256=doc.sha256,
                summary=summary,
            )
        )
