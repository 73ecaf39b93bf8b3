"""The audit log service: cheap appends, one writer thread, group commit.

``append(event)`` serialises the event and enqueues it (safe from any thread or
coroutine; it never touches the database). One writer thread takes whatever is queued (up
to ``max_batch`` records, waiting at most ``max_wait`` seconds for more) and writes it in
ONE transaction: it reads the chain head inside the transaction (so several processes on
one database keep one chain), links every record, inserts a signed checkpoint every
``checkpoint_every`` records, and commits. ``flush()`` returns once everything appended
before it is committed. ``close()`` flushes and writes a final checkpoint.

If a write fails the log fails closed: ``flush`` and later ``append`` calls raise
:class:`AuditUnavailable`, and the events not yet written stay in memory for the caller to
inspect (``pending``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

from egide.audit.chain import GENESIS_HASH, Record, extend
from egide.audit.checkpoints import CHECKPOINT_EVENT, Signer
from egide.audit.events import Event, canonical
from egide.errors import EgideError
from egide.store import audit as store
from egide.store.db import Connection, Database

DEFAULT_CHECKPOINT_EVERY = 1000


class AuditUnavailable(EgideError):
    """The audit log could not be written; requests must not proceed unaudited."""


class AuditLog:
    def __init__(
        self,
        db: Database,
        signer: Signer,
        *,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        max_batch: int = 1000,
        max_wait: float = 0.005,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.db = db
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.pending: deque[tuple[str, bytes]] = deque()
        self._cond = threading.Condition()
        self._enqueued = 0
        self._committed = 0
        self._flush_wanted = 0
        self._closing = False
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._run, name="egide-audit-writer", daemon=True)
        self._writer.start()

    # -- producers -------------------------------------------------------------------

    def append(self, event: Event) -> None:
        """Enqueue one event; it is durable once :meth:`flush` returns."""
        item = (event.name, canonical(event))
        with self._cond:
            self._raise_if_failed()
            if self._closing:
                raise AuditUnavailable("the audit log is closed; open a new AuditLog")
            self.pending.append(item)
            self._enqueued += 1
            if len(self.pending) == 1 or len(self.pending) >= self.max_batch:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event appended before this call is committed."""
        with self._cond:
            target = self._enqueued
            self._flush_wanted = max(self._flush_wanted, target)
            self._cond.notify_all()
            ok = self._cond.wait_for(
                lambda: self._committed >= target or self._error is not None, timeout
            )
            self._raise_if_failed()
            if not ok:
                raise AuditUnavailable(f"audit flush did not complete within {timeout} s")

    async def aflush(self) -> None:
        await asyncio.to_thread(self.flush)

    def close(self) -> None:
        """Flush, write a final checkpoint, stop the writer."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._writer.join()
        self._raise_if_failed()
        with self.db.transaction() as conn:
            head = store.chain_head(conn)
            if head is not None and store.last_checkpoint_seq(conn) != head[0]:
                self._write(conn, head, [], force_checkpoint=True)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise AuditUnavailable(
                f"the audit log could not be written ({self._error}); fix the state "
                "database and restart"
            ) from self._error

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self.pending) or self._closing)
                if not self.pending:
                    return
            if self.max_wait > 0:
                self._gather()
            with self._cond:
                n = min(len(self.pending), self.max_batch)
                batch = [self.pending[i] for i in range(n)]
            try:
                with self.db.transaction() as conn:
                    head = store.chain_head(conn) or (0, GENESIS_HASH)
                    self._write(conn, head, batch)
            except BaseException as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                for _ in range(n):
                    self.pending.popleft()
                self._committed += n
                self._cond.notify_all()

    def _gather(self) -> None:
        """Wait up to ``max_wait`` for a fuller batch, unless a caller is already flushing
        (then the batch is whatever accumulated while the previous commit ran)."""
        deadline = time.monotonic() + self.max_wait
        with self._cond:
            while (
                len(self.pending) < self.max_batch
                and not self._closing
                and self._flush_wanted <= self._committed
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _write(
        self,
        conn: Connection,
        head: tuple[int, str],
        batch: list[tuple[str, bytes]],
        *,
        force_checkpoint: bool = False,
    ) -> None:
        since = head[0] - store.last_checkpoint_seq(conn)
        records: list[Record] = []
        anchors: list[tuple[int, str]] = []
        for item in batch:
            linked, head = extend(head, [item])
            records += linked
            since += 1
            if since >= self.checkpoint_every:
                head = self._checkpoint(head, records, anchors)
                since = 0
        if force_checkpoint:
            head = self._checkpoint(head, records, anchors)
        store.insert_records(
            conn,
            [(r.seq, r.prev_hash, r.event, r.payload.decode("utf-8"), r.hash) for r in records],
        )
        store.insert_anchors(conn, anchors)

    def _checkpoint(
        self, head: tuple[int, str], records: list[Record], anchors: list[tuple[int, str]]
    ) -> tuple[int, str]:
        payload = self.signer.payload(*head)
        linked, head = extend(head, [(CHECKPOINT_EVENT, payload)])
        records += linked
        anchors.append((head[0], payload.decode("utf-8")))
        return head
