"""Compose the knowledge-base service from the settings, the store and the embedder."""

from __future__ import annotations

from egide.audit.log import AuditLog
from egide.backends import Backend
from egide.backends.base import Embeddings
from egide.config import DEFAULT_EMBEDDING_MODEL, Settings
from egide.errors import ConfigError, Unsupported
from egide.rag.access import LibraryAccess
from egide.rag.documents import DocumentService
from egide.rag.ingest import IngestWorker
from egide.rag.libraries import LibraryService
from egide.rag.parsing import Limits
from egide.rag.retrieval import Retriever
from egide.rag.service import Knowledge
from egide.security.labels import Label
from egide.security.levels import LevelScheme
from egide.store import Database
from egide.store.documents import DocumentRepository
from egide.store.libraries import LibraryRepository
from egide.store.orgs import OrgRepository
from egide.types import Capability


def embedding_backend(settings: Settings, backends: dict[str, Backend]) -> Backend | None:
    """The configured embedding model, else the packaged embedder, else the first model
    that embeds; None when no model can."""
    if settings.embedding_model is not None:
        backend = backends.get(settings.embedding_model)
        if backend is None or Capability.EMBEDDINGS not in backend.model.capabilities:
            raise ConfigError(
                f"embedding_model {settings.embedding_model!r} is not a configured model with "
                "the embeddings capability; fix embedding_model in egide.toml"
            )
        return backend
    if DEFAULT_EMBEDDING_MODEL in backends:
        return backends[DEFAULT_EMBEDDING_MODEL]
    for backend in backends.values():
        if Capability.EMBEDDINGS in backend.model.capabilities:
            return backend
    return None


def build_knowledge(
    settings: Settings,
    db: Database,
    scheme: LevelScheme,
    ceiling: Label,
    audit: AuditLog,
    backends: dict[str, Backend],
) -> Knowledge:
    embedder = embedding_backend(settings, backends)

    async def embed(texts: list[str], input_type: str) -> Embeddings:
        if embedder is None:
            raise Unsupported(
                "no embedding model is configured, and knowledge bases need one: declare a "
                "model with the embeddings capability (embedding_model in egide.toml)"
            )
        return await embedder.embed(texts, input_type=input_type)

    def count_tokens(text: str) -> int:
        if embedder is None:
            return max(1, len(text) // 3)
        return embedder.count_tokens(text, input_type="passage")

    async def embed_passages(texts: list[str]) -> Embeddings:
        return await embed(texts, "passage")

    access = LibraryAccess(scheme, ceiling, OrgRepository(db), audit)
    docs = DocumentRepository(db)
    retriever = Retriever(docs, access, settings.home / "search-index")
    limits = Limits(max_bytes=settings.rag_max_document_bytes, max_pages=settings.rag_max_pages)
    wake: list[IngestWorker] = []
    documents = DocumentService(
        docs,
        access,
        count_tokens,
        limits,
        settings.rag_chunk_tokens,
        lambda d: wake[0].wake(d),
        lease_s=settings.rag_ingest_lease_s,
    )
    worker = IngestWorker(
        docs,
        documents,
        embed_passages,
        lambda _d: retriever.sync(),
        poll_s=min(10.0, settings.rag_ingest_lease_s),
    )
    wake.append(worker)
    return Knowledge(
        LibraryService(LibraryRepository(db), docs, access),
        documents,
        retriever,
        worker,
        embed,
        top_k=settings.rag_top_k,
        min_similarity=settings.rag_min_similarity,
    )
