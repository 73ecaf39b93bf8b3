"""The ingestion worker: embeds stored chunks in batches, then makes the document
searchable.

It runs in the serving process as one asyncio task. A document is worked on under a lease
that every batch extends: if the process dies, the lease runs out and any process (this
one after a restart) resumes the document from its first chunk without a vector. An
embedding failure fails the document alone, with its reason, and removes its chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import numpy as np

from egide.audit.events import utc_now
from egide.backends.base import Embeddings
from egide.errors import EgideError
from egide.rag.chunking import Chunk
from egide.rag.documents import DocumentService
from egide.store.documents import ChunkRecord, DocumentRepository

Embed = Callable[[list[str]], Awaitable[Embeddings]]
log = logging.getLogger("egide.rag")


def embedding_text(chunk: ChunkRecord) -> str:
    """What was budgeted at chunking time: headings, then the passage."""
    return Chunk(
        chunk.position, chunk.text, chunk.page, chunk.headings, chunk.tokens
    ).for_embedding()


def to_blob(vector: list[float]) -> bytes:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array)) or 1.0
    return (array / norm).astype("<f4").tobytes()


class IngestWorker:
    def __init__(
        self,
        docs: DocumentRepository,
        service: DocumentService,
        embed: Embed,
        on_indexed: Callable[[str], None],
        batch: int = 8,
        poll_s: float = 10.0,
    ) -> None:
        self.docs = docs
        self.service = service
        self.embed = embed
        self.on_indexed = on_indexed
        self.batch = batch
        self.poll_s = poll_s
        self.lease_s = service.lease_s
        self._current: str | None = None
        self._queue: asyncio.Queue[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="egide-ingest")

    async def close(self) -> None:
        """Stop; the document being worked on is released, so that the next start (of this
        or any process) resumes it at once instead of waiting for its lease to run out."""
        current = self._current
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        if current is not None:
            await asyncio.to_thread(self.docs.release, current)

    def wake(self, document_id: str) -> None:
        """A document was just stored (by this process, which holds its lease)."""
        if self._queue is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._queue.put_nowait, document_id)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            document_id: str | None = None
            if self._queue.empty():
                # Documents left by a stopped or dead worker (lease released or run out),
                # at start and whenever idle: resume them one by one.
                document_id = await asyncio.to_thread(self.docs.claim, self.lease_s)
            if document_id is None:
                # asyncio.timeout, not wait_for: no inner task whose cancellation is lost.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        document_id = await self._queue.get()
                if document_id is None:
                    continue
            self._current = document_id
            try:
                await self.process(document_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # the worker must survive anything one document does
                log.exception("ingestion of document %s failed unexpectedly", document_id)
                await asyncio.to_thread(
                    self.docs.fail, document_id, "internal error while indexing", utc_now()
                )
            self._current = None

    async def process(self, document_id: str) -> bool:
        """Embed every chunk still without a vector; True once the document is searchable."""
        while True:
            batch = await asyncio.to_thread(self.docs.unembedded, document_id, self.batch)
            if not batch:
                break
            try:
                result = await self.embed([embedding_text(c) for c in batch])
            except EgideError as exc:
                return await self._fail(document_id, f"embedding failed: {exc.message}")
            blobs = [(c.id, to_blob(v)) for c, v in zip(batch, result.vectors, strict=True)]
            stored = await asyncio.to_thread(
                self.docs.store_vectors, document_id, blobs, result.prompt_tokens, self.lease_s
            )
            if not stored:  # deleted (or failed) meanwhile: nothing more to do
                return False
        if not await asyncio.to_thread(self.docs.finish, document_id, utc_now()):
            return False
        await asyncio.to_thread(self.on_indexed, document_id)
        doc = await asyncio.to_thread(self.docs.get, document_id)
        self.service.changed(None, "document-indexed", doc, f"{doc.chunks_total} chunk(s) indexed")
        return True

    async def _fail(self, document_id: str, reason: str) -> bool:
        await asyncio.to_thread(self.docs.fail, document_id, reason, utc_now())
        doc = await asyncio.to_thread(self.docs.get, document_id)
        self.service.changed(None, "document-failed", doc, reason)
        return False
