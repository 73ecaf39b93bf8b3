#!/usr/bin/env python3
"""Hybrid retrieval at a million chunks, under restrictive label filters.

Builds an ``egide.rag.index.HybridIndex`` over ``--chunks`` synthetic chunks (default
1,000,000; ``--quick``: 100,000) through its public ``add`` in batches of 20,000, as an
ingestion thread would, then measures single-threaded searches, one query at a time, for
three readers who may read about 1%, 10% and 100% of the chunks.

Synthetic corpus (seeded, reproducible):

* partitions: 25 libraries with Zipf-skewed sizes × 4 label levels (shares about
  55/30/12/3%), 100 partitions; each reader's partitions are picked greedily to reach
  1% / 10% / 100% of the rows (the achieved fraction is printed);
* vectors (dim 384, L2-normalised): 2,000 topic centres; a chunk is its topic's centre plus
  a 24-dimensional Gaussian offset (shared random basis) plus small isotropic noise, so the
  local intrinsic dimension is that of sentence embeddings rather than of uniform noise;
  70% of a library's chunks come from its own 40 topics;
* texts: 40–80 words per chunk drawn from a Zipf law (s = 1.07) over 50,000 pseudo-words.

Queries (``--queries``, default 300): a vector near a random chunk (cosine ≈ 0.96 to it,
the chunk being of any partition, readable or not) and a text of 2–6 words drawn from the
same Zipf law, skipping the 20 most frequent words (which a real analyser would drop as
stopwords). Each reader runs every query in vector, BM25 and hybrid mode, k = 10.

Reported per reader: p50/p95 latency per mode (ms), vector recall@10 against an exact
filtered search (brute force over exactly the readable rows), which vector plan ran;
then build time — until the last ``add`` returned (everything searchable) and until the
background upkeep settled (the HNSW graph holds every row) — and memory (RSS, peak).
Goals: vector p95 ≤ 20 ms, hybrid p95 ≤ 50 ms,
recall@10 ≥ 0.95 for the 1% reader. Results: ``bench/results/search_scale.json``.

Usage::

    .venv/bin/python bench/search_scale.py            # 1,000,000 chunks, about 15 minutes
    .venv/bin/python bench/search_scale.py --quick    # 100,000 chunks, about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from egide.rag.index import Entry, HybridIndex, Partition

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "search_scale.json"
DIM, TOPICS, RANK, LIBRARIES, LEVELS = 384, 2_000, 24, 25, 4
VOCABULARY, ZIPF_S, BATCH, K, EXACT_LIMIT = 50_000, 1.07, 20_000, 10, 20_000
LEVEL_SHARES = np.array([0.55, 0.30, 0.12, 0.03])
GOAL_VECTOR_P95, GOAL_HYBRID_P95, GOAL_RECALL = 20.0, 50.0, 0.95


class Corpus:
    """Everything about the synthetic chunks, generated batch by batch from one seed."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        rng = np.random.default_rng(seed)
        self.seed = seed
        centres = rng.standard_normal((TOPICS, DIM), dtype=np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.basis = rng.standard_normal((DIM, RANK), dtype=np.float32) / np.sqrt(RANK)
        lib_share = 1.0 / np.arange(1, LIBRARIES + 1) ** 1.1
        lib_share /= lib_share.sum()
        level_share = rng.dirichlet(LEVEL_SHARES * 40, size=LIBRARIES)
        share = (lib_share[:, None] * level_share).reshape(-1)
        self.partitions: list[Partition] = [
            (f"lib-{lib:02d}", level) for lib in range(LIBRARIES) for level in range(LEVELS)
        ]
        self.part = rng.choice(len(self.partitions), size=n, p=share / share.sum())
        own_topics = rng.integers(0, TOPICS, size=(LIBRARIES, 40))
        lib = self.part // LEVELS
        topical = rng.random(n) < 0.7
        self.topic = np.where(
            topical, own_topics[lib, rng.integers(0, 40, n)], rng.integers(0, TOPICS, n)
        )
        ranks = np.arange(1, VOCABULARY + 1, dtype=np.float64)
        self.word_p = 1.0 / ranks**ZIPF_S
        self.word_p /= self.word_p.sum()
        self.words = pseudo_words(VOCABULARY, rng)
        self.vectors = np.empty((n, DIM), dtype=np.float32)
        for start in range(0, n, 50_000):
            self.vectors[start : start + 50_000] = self._vectors(start, min(n, start + 50_000))

    def _vectors(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, 1, start))
        z = rng.standard_normal((stop - start, RANK), dtype=np.float32) * 0.9
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32) * (0.15 / DIM**0.5)
        v = self.centres[self.topic[start:stop]] + z @ self.basis.T + noise
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def entries(self, start: int, stop: int) -> list[Entry]:
        rng = np.random.default_rng((self.seed, 2, start))
        lengths = rng.integers(40, 81, stop - start)
        ids = rng.choice(VOCABULARY, size=int(lengths.sum()), p=self.word_p)
        words, out, at = self.words, [], 0
        for i, length in enumerate(lengths.tolist()):
            row = start + i
            text = " ".join(words[w] for w in ids[at : at + length].tolist())
            at += length
            doc = f"doc-{row // 20}"
            partition = self.partitions[self.part[row]]
            out.append(Entry(row + 1, doc, partition, text, self.vectors[row]))
        return out

    def queries(self, count: int) -> list[tuple[np.ndarray, str]]:
        rng = np.random.default_rng((self.seed, 3))
        out = []
        skip = self.word_p.copy()
        skip[:20] = 0.0
        skip /= skip.sum()
        for row in rng.integers(0, self.n, count).tolist():
            q = self.vectors[row] + rng.standard_normal(DIM).astype(np.float32) * 0.3 / DIM**0.5
            words = rng.choice(VOCABULARY, size=int(rng.integers(2, 7)), p=skip)
            out.append((q / np.linalg.norm(q), " ".join(self.words[w] for w in words)))
        return out

    def reader(self, target: float) -> list[Partition]:
        """Partitions whose rows add up to about ``target`` of all rows: lower levels and
        smaller libraries first, as a low clearance on a few libraries would read."""
        sizes = np.bincount(self.part, minlength=len(self.partitions))
        order = sorted(range(len(self.partitions)), key=lambda p: (p % LEVELS, sizes[p]))
        chosen, total, goal = [], 0, target * self.n
        for p in order:
            if total + sizes[p] <= goal * 1.02:
                chosen.append(p)
                total += sizes[p]
        return [self.partitions[p] for p in chosen]


def pseudo_words(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct pronounceable words (2–4 syllables) that no analyser rule changes."""
    onsets = [*"bdfgklmnprtvz", "ch", "tr", "gr", "pl"]
    vowels = ["a", "e", "i", "o", "u", "ou", "ai", "an", "on"]
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        syllables = int(rng.integers(2, 5))
        word = "".join(
            onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
            for _ in range(syllables)
        )
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def exact_top(corpus: Corpus, rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact filtered top-k chunk ids for every query (brute force over ``rows``)."""
    best_s = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_r = np.zeros((len(queries), K), dtype=np.int64)
    for start in range(0, len(rows), 100_000):
        block = rows[start : start + 100_000]
        scores = queries @ corpus.vectors[block].T
        s = np.concatenate((best_s, scores), axis=1)
        r = np.concatenate((best_r, np.broadcast_to(block, scores.shape)), axis=1)
        keep = np.argpartition(-s, K - 1, axis=1)[:, :K]
        best_s = np.take_along_axis(s, keep, axis=1)
        best_r = np.take_along_axis(r, keep, axis=1)
    return best_r + 1  # chunk id = row + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 chunks")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    n = 100_000 if args.quick else args.chunks
    faiss.omp_set_num_threads(args.threads)

    rss_start = rss_mib()
    t0 = time.perf_counter()
    corpus = Corpus(n, args.seed)
    print(f"corpus: {n:,} chunks × {DIM} in {time.perf_counter() - t0:.1f} s")
    rss_data = rss_mib()

    index = HybridIndex(DIM, exact_limit=EXACT_LIMIT)
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        index.add(corpus.entries(start, min(n, start + BATCH)))
        done = min(n, start + BATCH)
        if done % 100_000 == 0 or done == n:
            print(f"  added {done:>9,} in {time.perf_counter() - t0:7.1f} s", flush=True)
    added_s = time.perf_counter() - t0
    index.settle()  # the graph holds every row, merges are done
    build_s = time.perf_counter() - t0
    rss_index = rss_mib()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"build: {added_s:.1f} s to add (searchable), {build_s:.1f} s until the graph holds "
        f"every row; RSS {rss_index:,.0f} MiB (index ≈ {rss_index - rss_data:,.0f} MiB on "
        f"top of the generated data), peak {peak:,.0f} MiB"
    )

    queries = corpus.queries(args.queries)
    qmatrix = np.stack([q for q, _ in queries])
    for q, text in queries[:20]:  # warm-up
        index.search(vector=q, text=text, partitions=corpus.partitions, k=K)

    results: dict[str, Any] = {
        "chunks": n,
        "dim": DIM,
        "queries": len(queries),
        "added_s": round(added_s, 1),
        "build_s": round(build_s, 1),
        "rss_mib": {"start": rss_start, "data": rss_data, "indexed": rss_index, "peak": peak},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, faiss threads {args.threads}",
        "readers": {},
    }
    print(
        f"\n{'reader':>7} {'rows':>9} {'plan':>6} | {'vector p50/p95':>15} | "
        f"{'bm25 p50/p95':>15} | {'hybrid p50/p95':>15} | recall@10"
    )
    for target in (0.01, 0.10, 1.00):
        readable = corpus.reader(target)
        allowed = set(readable)
        rows = np.flatnonzero(np.isin(corpus.part, [corpus.partitions.index(p) for p in readable]))
        truth = exact_top(corpus, rows, qmatrix)
        times: dict[str, list[float]] = {"vector": [], "bm25": [], "hybrid": []}
        recalls = []
        for i, (q, text) in enumerate(queries):
            for mode in times:
                start = time.perf_counter()
                hits = index.search(vector=q, text=text, partitions=readable, k=K, mode=mode)
                times[mode].append((time.perf_counter() - start) * 1000)
                assert all(h.partition in allowed for h in hits), "hit outside the reader's set"
                if mode == "vector":
                    assert len(hits) == min(K, len(rows))
                    recalls.append(len({h.chunk_id for h in hits} & set(truth[i].tolist())) / K)
        plan = "exact" if len(rows) <= EXACT_LIMIT else "graph"
        stats = {
            m: (float(np.percentile(t, 50)), float(np.percentile(t, 95))) for m, t in times.items()
        }
        recall = float(np.mean(recalls))
        results["readers"][f"{target:.0%}"] = {
            "rows": len(rows),
            "fraction": len(rows) / n,
            "plan": plan,
            "recall_at_10": recall,
            **{f"{m}_p50_ms": s[0] for m, s in stats.items()},
            **{f"{m}_p95_ms": s[1] for m, s in stats.items()},
        }
        cells = " | ".join(f"{s[0]:6.2f} / {s[1]:6.2f}" for s in stats.values())
        print(f"{len(rows) / n:>7.2%} {len(rows):>9,} {plan:>6} | {cells} | {recall:.4f}")

    readers = results["readers"]
    worst_vector = max(r["vector_p95_ms"] for r in readers.values())
    worst_hybrid = max(r["hybrid_p95_ms"] for r in readers.values())
    recall_1 = readers["1%"]["recall_at_10"]
    results["goals"] = {
        "vector_p95_ms": [worst_vector, GOAL_VECTOR_P95, worst_vector <= GOAL_VECTOR_P95],
        "hybrid_p95_ms": [worst_hybrid, GOAL_HYBRID_P95, worst_hybrid <= GOAL_HYBRID_P95],
        "recall_at_10_1pct": [recall_1, GOAL_RECALL, recall_1 >= GOAL_RECALL],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nbuild {build_s:.1f} s, RSS {rss_index:,.0f} MiB, {n:,} chunks; {args.out}")
    print(
        f"GOAL vector p95 ≤ {GOAL_VECTOR_P95:.0f} ms (worst reader): {worst_vector:.2f} ms — "
        f"{'met' if worst_vector <= GOAL_VECTOR_P95 else 'NOT MET'}"
    )
    print(
        f"GOAL hybrid p95 ≤ {GOAL_HYBRID_P95:.0f} ms (worst reader): {worst_hybrid:.2f} ms — "
        f"{'met' if worst_hybrid <= GOAL_HYBRID_P95 else 'NOT MET'}"
    )
    print(
        f"GOAL recall@10 ≥ {GOAL_RECALL} at 1%: {recall_1:.4f} — "
        f"{'met' if recall_1 >= GOAL_RECALL else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
