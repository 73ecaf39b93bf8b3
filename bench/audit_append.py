#!/usr/bin/env python3
"""Durable audit appends per second: group commit against one transaction per event.

(a) ``one-by-one``: one thread, ``append`` then ``flush`` for every event, and the writer
    never waits to gather a batch (``max_wait=0``): one transaction per event.
(b) ``group commit``: 8 threads, each ``append`` then ``flush`` for every event (so every
    event is durable before its thread goes on); the writer commits whatever accumulated.

Both use a dedicated SQLite connection with ``synchronous=FULL`` (fsync on every commit in
WAL mode), in a fresh state directory on the same disk as the bench. Prints both rates, the
ratio (b)/(a), and (b) against the 5,000 events/s goal.

Usage::

    .venv/bin/python bench/audit_append.py [--seconds 3] [--threads 8] [--dir PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from egide.audit.checkpoints import Signer, load_or_create_signing_key
from egide.audit.events import Decision
from egide.audit.log import AuditLog
from egide.audit.verify import verify_database
from egide.store.db import SqliteDatabase

GOAL = 5_000


def event(i: int) -> Decision:
    return Decision(
        actor=f"user-{i % 50}",
        org_path="ministere/dga/unite-12",
        request_id=f"req-{i}",
        action="chat",
        resource="model:mistral-small",
        allowed=True,
        reason="clearance S dominates label DR",
    )


def open_log(home: Path, *, max_wait: float) -> tuple[SqliteDatabase, AuditLog, Signer]:
    home.mkdir(parents=True)
    db = SqliteDatabase(home / "egide.db")
    db.migrate()
    db.query("PRAGMA synchronous=FULL")
    signer = Signer(load_or_create_signing_key(home))
    return db, AuditLog(db, signer, max_wait=max_wait), signer


def run(home: Path, threads: int, seconds: float, max_wait: float) -> tuple[int, float]:
    db, log, signer = open_log(home, max_wait=max_wait)
    stop = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(k: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            log.append(event(i))
            log.flush()
            i += 1
        counts[k] = i

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    log.close()
    db.close()
    report = verify_database(home / "egide.db", signer.public_key)
    assert report.ok, report.summary()
    return sum(counts), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--dir", default=None, help="where to create the databases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        n_a, t_a = run(base / "one-by-one", 1, args.seconds, max_wait=0.0)
        n_b, t_b = run(base / "group", args.threads, args.seconds, max_wait=0.005)
    rate_a, rate_b = n_a / t_a, n_b / t_b
    print(f"(a) one-by-one, flush per event, 1 thread : {rate_a:10.0f} events/s ({n_a} events)")
    print(
        f"(b) group commit, {args.threads} threads, flush per event: "
        f"{rate_b:10.0f} events/s ({n_b} events)"
    )
    print(f"ratio (b)/(a): {rate_b / rate_a:.1f}x")
    verdict = "meets" if rate_b >= GOAL else "MISSES"
    print(f"(b) {verdict} the {GOAL} durable events/s goal: {rate_b / GOAL:.2f}x the goal")


if __name__ == "__main__":
    main()
