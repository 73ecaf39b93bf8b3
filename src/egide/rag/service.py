"""Knowledge bases as one service: libraries, documents, ingestion and search.

Route handlers call one method of :class:`Knowledge`; the gateway calls :meth:`retrieve`
to ground a chat answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from egide.audit.events import Retrieval
from egide.backends.base import Embeddings
from egide.errors import InvalidRequest
from egide.rag.access import Library, LibraryAccess
from egide.rag.documents import DocumentService, Upload
from egide.rag.grounding import Grounding, ground, relevant
from egide.rag.ingest import IngestWorker
from egide.rag.libraries import LibraryService, LibraryView
from egide.rag.retrieval import Found, Retriever
from egide.security.actions import Action
from egide.security.labels import Label, bottom, join_all
from egide.security.markings import render_compact
from egide.store.documents import DocumentRecord, DocumentRepository
from egide.tenancy import Caller

EmbedTexts = Callable[[list[str], str], Awaitable[Embeddings]]
MODES = ("hybrid", "vector", "bm25")


@dataclass(frozen=True)
class SearchQuery:
    query: str
    library_ids: tuple[str, ...] = ()  # empty: every library the caller may read
    top_k: int = 10
    mode: str = "hybrid"
    document_ids: tuple[str, ...] | None = None
    mime_types: tuple[str, ...] | None = None
    attributes: tuple[tuple[str, Any], ...] = ()  # each must equal the document's

    def check(self) -> None:
        if not self.query.strip():
            raise InvalidRequest("'query' may not be empty", param="query")
        if len(self.query) > 4000:
            raise InvalidRequest("'query' is longer than 4,000 characters", param="query")
        if not 1 <= self.top_k <= 100:
            raise InvalidRequest("'top_k' must be between 1 and 100", param="top_k")
        if self.mode not in MODES:
            raise InvalidRequest(f"'mode' must be one of {', '.join(MODES)}", param="mode")


@dataclass(frozen=True)
class Results:
    found: list[Found]
    documents: dict[str, DocumentRecord]
    label: Label  # join of every chunk's label (the lowest label when nothing was found)


class Knowledge:
    def __init__(
        self,
        libraries: LibraryService,
        documents: DocumentService,
        retriever: Retriever,
        worker: IngestWorker,
        embed: EmbedTexts,
        top_k: int = 5,
        min_similarity: float = 0.8,
    ) -> None:
        self.top_k = top_k
        self.min_similarity = min_similarity
        self.libraries = libraries
        self.documents = documents
        self.retriever = retriever
        self.worker = worker
        self.embed = embed

    @property
    def access(self) -> LibraryAccess:
        return self.libraries.access

    @property
    def repo(self) -> DocumentRepository:
        return self.documents.docs

    async def start(self) -> None:
        await asyncio.to_thread(self.retriever.load)
        self.worker.start()

    async def close(self) -> None:
        await self.worker.close()
        await asyncio.to_thread(self.retriever.save)

    # -- documents ----------------------------------------------------------------------

    def upload(self, caller: Caller, library_id: str, upload: Upload) -> DocumentRecord:
        library = self.libraries.open(caller, library_id, Action.LIBRARY_WRITE)
        return self.documents.upload(caller, library, upload)

    def list_documents(self, caller: Caller, library_id: str) -> list[DocumentRecord]:
        library = self.libraries.open(caller, library_id, Action.LIBRARY_READ)
        return self.documents.listing(caller, library)

    def get_document(self, caller: Caller, library_id: str, document_id: str) -> DocumentRecord:
        library = self.libraries.open(caller, library_id, Action.LIBRARY_READ)
        return self.documents.open(caller, library, document_id)

    def document_text(self, caller: Caller, library_id: str, document_id: str) -> str:
        doc = self.get_document(caller, library_id, document_id)
        return "\n\n".join(c.text for c in self.repo.text_of(doc.id))

    def delete_library(self, caller: Caller, library_id: str) -> LibraryView:
        view = self.libraries.get(caller, library_id)
        self.libraries.delete(caller, library_id)
        self.retriever.sync()
        return view

    def update_document(
        self,
        caller: Caller,
        library_id: str,
        document_id: str,
        name: str | None,
        attributes: dict[str, Any] | None,
        label: str | None,
    ) -> DocumentRecord:
        """Rename, set attributes, and/or relabel (a relabel re-scopes every chunk)."""
        library = self.libraries.open(caller, library_id, Action.LIBRARY_WRITE)
        doc = self.documents.rename(caller, library, document_id, name, attributes)
        if label is not None:
            doc = self.documents.relabel(caller, library, document_id, label)
            self.retriever.sync()
        return doc

    def delete_document(self, caller: Caller, library_id: str, document_id: str) -> None:
        library = self.libraries.open(caller, library_id, Action.LIBRARY_WRITE)
        self.documents.delete(caller, library, document_id)
        self.retriever.sync()

    def relabel_document(
        self, caller: Caller, library_id: str, document_id: str, label: str
    ) -> DocumentRecord:
        library = self.libraries.open(caller, library_id, Action.LIBRARY_WRITE)
        doc = self.documents.relabel(caller, library, document_id, label)
        self.retriever.sync()
        return doc

    # -- search -------------------------------------------------------------------------

    def readable_libraries(self, caller: Caller, library_ids: tuple[str, ...]) -> list[Library]:
        """The named libraries (each decided and recorded), or every readable one."""
        if library_ids:
            return [
                self.libraries.open(caller, lid, Action.LIBRARY_READ)
                for lid in dict.fromkeys(library_ids)
            ]
        return [
            view.library
            for view in self.libraries.list(caller)
            if self.access.decide(caller.principal, Action.LIBRARY_READ, view.library).allowed
        ]

    async def search(self, caller: Caller, query: SearchQuery) -> Results:
        query.check()
        libraries = self.readable_libraries(caller, query.library_ids)
        vector = None
        if query.mode != "bm25":
            result = await self.embed([query.query], "query")
            vector = np.asarray(result.vectors[0], dtype=np.float32)
        found = await asyncio.to_thread(
            self.retriever.search,
            caller.principal,
            libraries,
            vector=vector,
            text=query.query if query.mode != "vector" else None,
            k=query.top_k,
            mode=query.mode,  # type: ignore[arg-type]
            documents=self._documents(libraries, query),
        )
        label = join_all([f.label for f in found]) if found else bottom(self.access.scheme)
        self._record(caller, libraries, query.query, found, label)
        docs = self.repo.by_ids(sorted({f.chunk.document_id for f in found}))
        return Results(found, docs, label)

    async def ground(
        self, caller: Caller, library_ids: tuple[str, ...], question: str
    ) -> Grounding | None:
        """Sources for a grounded answer, or None when nothing relevant was found. The
        chunks are read and checked once more just before the prompt is assembled."""
        query = SearchQuery(question[-4000:], library_ids, self.top_k)
        results = await self.search(caller, query)
        sources = relevant(results.found, self.min_similarity)
        if not sources:
            return None
        allowed = {lib.id for lib in self.readable_libraries(caller, library_ids)}
        rechecked = await asyncio.to_thread(
            self.retriever.recheck, caller.principal, allowed, [f.hit for f in sources]
        )
        return ground(rechecked, results.documents) if rechecked else None

    def _documents(self, libraries: list[Library], query: SearchQuery) -> tuple[str, ...] | None:
        """The metadata filters as a set of document ids (None: no filter)."""
        if query.mime_types is None and not query.attributes:
            return query.document_ids
        wanted = set(query.document_ids) if query.document_ids is not None else None
        found = []
        for library in libraries:
            for doc in self.repo.in_library(library.id):
                if wanted is not None and doc.id not in wanted:
                    continue
                if query.mime_types is not None and doc.mime_type not in query.mime_types:
                    continue
                if any(doc.attributes.get(k) != v for k, v in query.attributes):
                    continue
                found.append(doc.id)
        return tuple(found)

    def _record(
        self,
        caller: Caller,
        libraries: list[Library],
        query: str,
        found: list[Found],
        label: Label,
    ) -> None:
        p = caller.principal
        self.access.audit.append(
            Retrieval(
                actor=p.user_id,
                org_path="/".join(p.org_path),
                request_id=caller.request_id,
                libraries=",".join(lib.id for lib in libraries),
                query_sha256=hashlib.sha256(query.encode()).hexdigest(),
                chunks=",".join(str(f.chunk.id) for f in found),
                label=render_compact(label),
            )
        )
