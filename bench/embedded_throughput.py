#!/usr/bin/env python3
"""Generation throughput of the embedded engine: through Égide's HTTP API vs. called directly.

One run measures, with the same GGUF, the same engine parameters, the same request bodies
and the same workload:

* ``direct`` - ``xllamacpp.Server`` built exactly as ``egide.backends.embedded`` builds it
  (``n_parallel = 8``, ``n_ctx = 4096 * 8``, ``n_threads = os.cpu_count()``, jinja on),
  driven in-process with ``handle_chat_completions(body, callback)`` from one thread per
  stream (what the gateway's thread pool does), in a child process of its own;
* ``api``    - ``egide serve`` (default models, loopback only) driven over HTTP with
  streaming (SSE) requests from an aiohttp client in this process.

The two never run at the same time: each phase loads the model, warms up, measures, and
frees everything (the direct child exits, the server's process group is killed) before the
next starts. Phases alternate ``direct, api, direct, api, ...`` for ``--rounds`` rounds, and
each figure reported is the median over rounds, so drift on a shared machine hits both.

Workload of every phase (after a short warm-up of 8 concurrent + 1 single short requests):

* one stream: ``--single-requests`` sequential requests, one at a time;
* 8 streams:  ``--batches`` batches of 8 concurrent requests, each with a different prompt.

All requests use ``temperature: 0``, a fixed ``seed`` and ``max_tokens``; tokens are counted
from ``usage.completion_tokens`` (``stream_options.include_usage``) on both sides.

* tokens/s (wall)   = completion tokens / (request sent -> last byte); for 8 streams the
  aggregate is all tokens of the batch / (first request sent -> last request done);
* tokens/s (decode) = (completion tokens - 1) / (first content chunk -> last content chunk);
  for 8 streams: sum of (tokens - 1) / (earliest first chunk -> latest last chunk).

Judged ratios: (1) one stream, API ÷ direct (goal >= 0.95); (2) 8 streams through the API,
aggregate ÷ one stream through the API (goal >= 2x).
Results: bench/results/embedded_throughput.json.

Usage::

    .venv/bin/python bench/embedded_throughput.py                  # 3 rounds, max_tokens 128
    .venv/bin/python bench/embedded_throughput.py --rounds 5 --home ~/.egide-bench

``--home`` reuses an Égide state directory (the chat GGUF is assembled there once); without
it a temporary one is created and deleted. Only 127.0.0.1 is ever contacted. Before each
phase the script waits (up to ``--max-wait`` s) while another heavy process
(``gateway_overhead``, ``litellm``, another ``egide serve``) is running.

Internal sub-command (spawned by the orchestrator): ``_direct``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EGIDE_BIN = ROOT / ".venv" / "bin" / "egide"
RESULTS_DIR = ROOT / "bench" / "results"
RESULTS_JSON = RESULTS_DIR / "embedded_throughput.json"
HOST = "127.0.0.1"
MODEL_ID = "qwen2.5-coder-0.5b-instruct"
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
# Same engine settings as egide.config's default chat model + egide.backends.embedded.
PARALLEL = 8
CONTEXT_LENGTH = 4096
STREAMS = 8
WARMUP_TOKENS = 16
HEAVY = "gateway_overhead|litellm|egide serve"
REQUEST_TIMEOUT = 600.0

# Eight prompts that make the coder model write well past 128 tokens at temperature 0.
PROMPTS = [
    "Write a Python module implementing an LRU cache class with get, put, delete and "
    "resize methods. Include type hints, docstrings and a small unittest suite.",
    "Write a complete Flask REST API for a todo list with create, read, update and delete "
    "endpoints, input validation and error handlers. Explain each part.",
    "Implement Dijkstra's shortest path algorithm in Python with a binary heap, then "
    "write a command-line program that reads a graph from a CSV file and prints paths.",
    "Write a bash script that backs up a directory to a timestamped tar.gz archive, "
    "keeps the last 7 backups, logs every step and handles errors carefully.",
    "Write a TypeScript React component for a sortable, filterable data table with "
    "pagination. Include the props interface, state handling and CSS.",
    "Write a Rust program that reads a large text file, counts word frequencies with a "
    "HashMap and prints the 20 most frequent words. Explain ownership choices.",
    "Write a SQL schema for a library system (books, authors, members, loans) with "
    "indexes and constraints, then ten example queries with explanations.",
    "Write a Go HTTP server with graceful shutdown, structured logging, a health "
    "endpoint and middleware for request IDs and timing. Comment the code.",
]


# -- shared: request bodies and chunk accounting ------------------------------------------


def api_body(prompt: str, max_tokens: int, seed: int) -> dict[str, Any]:
    return {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "seed": seed,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def engine_body(body: dict[str, Any]) -> dict[str, Any]:
    """The dict the gateway hands to ``handle_chat_completions`` for ``body`` (same
    validation/dump/drop as ``EmbeddedLlama._chat_body``), so both sides ask the same."""
    try:
        from egide.backends.embedded import _DROP
        from egide.protocol.requests import ChatRequest
    except Exception:  # pragma: no cover - egide not importable: send the body as is
        out = {k: v for k, v in body.items() if k != "model"}
        out["stream_options"] = {"include_usage": True}
        return out
    request = ChatRequest.model_validate(body)
    out = request.model_dump(exclude_none=True, by_alias=True)
    for key in _DROP:
        out.pop(key, None)
    out["stream_options"] = {"include_usage": True}
    return out


class Record:
    """Timestamps and counts of one streamed request (both sides use this)."""

    __slots__ = (
        "chunks",
        "error",
        "finish",
        "t_end",
        "t_first",
        "t_last",
        "t_start",
        "timings",
        "usage",
    )

    def __init__(self) -> None:
        self.t_start = time.perf_counter()
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.t_end: float | None = None
        self.chunks = 0
        self.usage: dict[str, Any] | None = None
        self.timings: dict[str, Any] | None = None
        self.finish: str | None = None
        self.error: str | None = None

    def feed(self, chunk: Any, now: float) -> None:
        if isinstance(chunk, list):
            for item in chunk:
                self.feed(item, now)
            return
        if not isinstance(chunk, dict):
            return
        if chunk.get("error"):
            self.error = json.dumps(chunk["error"])[:300]
            return
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.t_first is None:
                    self.t_first = now
                self.t_last = now
                self.chunks += 1
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if chunk.get("timings"):
            self.timings = chunk["timings"]

    def as_dict(self, kind: str, batch: int, prompt: int) -> dict[str, Any]:
        usage = self.usage or {}
        return {
            "kind": kind,
            "batch": batch,
            "prompt": prompt,
            "t_start": self.t_start,
            "t_first": self.t_first,
            "t_last": self.t_last,
            "t_end": self.t_end,
            "content_chunks": self.chunks,
            "completion_tokens": usage.get("completion_tokens"),
            "prompt_tokens": usage.get("prompt_tokens"),
            "finish_reason": self.finish,
            "engine_timings": self.timings,
            "error": self.error,
        }


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system, all threads) of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


# -- direct side (child process) -----------------------------------------------------------


def direct_main(args: argparse.Namespace) -> int:
    import gc

    import xllamacpp

    spec = json.loads(Path(args.spec).read_text())
    params = xllamacpp.CommonParams()
    params.model.path = spec["gguf"]
    params.n_parallel = PARALLEL
    params.n_ctx = CONTEXT_LENGTH * PARALLEL
    threads = os.cpu_count() or 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.use_jinja = True
    params.offline = True
    params.hostnames = [HOST]
    params.port = 0
    params.api_keys = [os.urandom(24).hex()]
    t_load = time.perf_counter()
    server = xllamacpp.Server(params)
    load_s = time.perf_counter() - t_load
    pool = ThreadPoolExecutor(max_workers=STREAMS, thread_name_prefix="direct")

    def one(body: dict[str, Any]) -> Record:
        rec = Record()

        def on_chunk(chunk: Any) -> bool:
            rec.feed(chunk, time.perf_counter())
            return False

        result = server.handle_chat_completions(body, on_chunk)
        rec.t_end = time.perf_counter()
        if isinstance(result, dict) and result.get("error"):
            rec.error = json.dumps(result["error"])[:300]
        return rec

    def batch(bodies: list[dict[str, Any]]) -> list[Record]:
        futures = [pool.submit(one, b) for b in bodies]
        return [f.result(timeout=REQUEST_TIMEOUT) for f in futures]

    records: list[dict[str, Any]] = []
    cpu: dict[str, float] = {}
    warm = spec["warmup"]
    batch(warm["concurrent"])
    batch([warm["single"]])

    c0 = time.process_time()
    for i, body in enumerate(spec["single"]):
        rec = batch([body])[0]  # from a pool thread, as the gateway does
        records.append(rec.as_dict("single", i, spec["single_prompts"][i]))
    cpu["single"] = time.process_time() - c0
    c0 = time.process_time()
    for b, bodies in enumerate(spec["concurrent"]):
        for p, rec in enumerate(batch(bodies)):
            records.append(rec.as_dict("concurrent", b, p))
    cpu["concurrent"] = time.process_time() - c0

    Path(args.out).write_text(
        json.dumps({"load_s": load_s, "records": records, "engine_cpu_s": cpu, "client_cpu_s": {}})
    )
    pool.shutdown(wait=True)
    server = None  # free the engine before exiting
    gc.collect()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # don't let interpreter teardown race the engine's threads


# -- API side (this process) ---------------------------------------------------------------


async def api_workload(base: str, key: str, spec: dict[str, Any], server_pid: int) -> dict:
    import aiohttp

    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    url = f"{base}/v1/chat/completions"
    loads = json.loads

    async with aiohttp.ClientSession(
        headers=headers, timeout=timeout, connector=connector
    ) as session:

        async def one(body: dict[str, Any]) -> Record:
            rec = Record()
            async with session.post(url, json=body) as resp:
                if resp.status != 200:
                    rec.error = f"HTTP {resp.status}: {(await resp.text())[:300]}"
                    rec.t_end = time.perf_counter()
                    return rec
                async for line in resp.content:
                    if not line.startswith(b"data: "):
                        continue
                    data = line[6:].strip()
                    if data == b"[DONE]":
                        break
                    rec.feed(loads(data), time.perf_counter())
            rec.t_end = time.perf_counter()
            return rec

        async def batch(bodies: list[dict[str, Any]]) -> list[Record]:
            return list(await asyncio.gather(*(one(b) for b in bodies)))

        warm = spec["warmup"]
        await batch(warm["concurrent"])
        await one(warm["single"])

        records: list[dict[str, Any]] = []
        engine_cpu: dict[str, float] = {}
        client_cpu: dict[str, float] = {}
        s0, c0 = cpu_of(server_pid), time.process_time()
        for i, body in enumerate(spec["single"]):
            records.append((await one(body)).as_dict("single", i, spec["single_prompts"][i]))
        engine_cpu["single"] = cpu_of(server_pid) - s0
        client_cpu["single"] = time.process_time() - c0
        s0, c0 = cpu_of(server_pid), time.process_time()
        for b, bodies in enumerate(spec["concurrent"]):
            for p, rec in enumerate(await batch(bodies)):
                records.append(rec.as_dict("concurrent", b, p))
        engine_cpu["concurrent"] = cpu_of(server_pid) - s0
        client_cpu["concurrent"] = time.process_time() - c0
    return {"records": records, "engine_cpu_s": engine_cpu, "client_cpu_s": client_cpu}


# -- orchestration -------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _family() -> set[int]:
    """This process and its ancestors (a wrapper shell's command line may match)."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


class Quiet:
    """Keeps the measurements away from other heavy processes (``HEAVY`` in ``pgrep -af``):
    waits before a phase while one runs, and watches during the phase so that a phase one
    of them overlapped can be measured again. Processes still there after ``max_wait`` are
    tolerated for the rest of the run (reported, not waited for again)."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self.mine: set[int] = set()  # processes this run started
        self.tolerated: set[int] = set()
        self.waits: list[dict[str, Any]] = []
        self.intruders: dict[int, str] = {}
        self.intruded = threading.Event()  # set as soon as the watch sees an intruder

    def others(self) -> dict[int, str]:
        out = subprocess.run(["pgrep", "-af", HEAVY], capture_output=True, text=True).stdout
        family = _family()
        found = {}
        for line in out.splitlines():
            pid_s, _, cmd = line.partition(" ")
            if not pid_s.isdigit():
                continue
            pid = int(pid_s)
            if pid not in self.mine and pid not in family and pid not in self.tolerated:
                found[pid] = cmd[:150]
        return found

    def wait(self) -> None:
        started = time.monotonic()
        others = self.others()
        if not others:
            return
        log(
            f"waiting: {len(others)} other heavy process(es) running (poll 15 s, up to "
            f"{self.max_wait:.0f} s):"
        )
        for pid, cmd in others.items():
            print(f"      {pid} {cmd}", flush=True)
        while others and time.monotonic() - started < self.max_wait:
            time.sleep(15)
            others = self.others()
        waited = time.monotonic() - started
        if others:
            log(f"WARNING: still running after waiting {waited:.0f} s; tolerating and measuring:")
            for pid, cmd in others.items():
                print(f"      {pid} {cmd}", flush=True)
            self.tolerated |= set(others)
        else:
            log(f"waited {waited:.0f} s; no other heavy process is running now")
        self.waits.append(
            {"waited_s": round(waited, 1), "still_running": [f"{p} {c}" for p, c in others.items()]}
        )

    @contextlib.contextmanager
    def watch(self, every: float = 2.0) -> Any:
        """Collect (in ``self.intruders``) heavy processes seen while the block runs."""
        self.intruders = {}
        self.intruded.clear()
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(every):
                found = self.others()
                if found:
                    self.intruders.update(found)
                    self.intruded.set()

        thread = threading.Thread(target=poll, name="quiet-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.intruders.update(self.others())


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def kill_group(proc: subprocess.Popen[Any], grace: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class EgideServer:
    """``egide serve`` in its own process group; always killed on exit."""

    def __init__(self, home: Path, logfile: Path, mine: set[int]) -> None:
        self.home, self.logfile, self.mine = home, logfile, mine
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EgideServer:
        env = {**os.environ, "EGIDE_HOME": str(self.home)}
        env.pop("EGIDE_CONFIG", None)
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(EGIDE_BIN), "serve", "--host", HOST, "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(self.home),
            )
        self.mine.add(self.proc.pid)
        try:
            self._wait_healthy(timeout=900)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.logfile.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"egide serve exited ({self.proc.returncode}):\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"egide serve not healthy after {timeout:.0f} s (see {self.logfile})")

    @property
    def key(self) -> str:
        return (self.home / "admin.key").read_text().strip()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.mine.discard(self.proc.pid)


class Aborted(Exception):
    """Another heavy process started during the phase: stop it early and measure again."""


def run_direct(
    spec_path: Path, out_path: Path, logfile: Path, mine: set[int], abort: threading.Event | None
) -> dict:
    with logfile.open("ab") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "_direct",
                "--spec",
                str(spec_path),
                "--out",
                str(out_path),
            ],
            stdout=err,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(ROOT),
        )
    mine.add(proc.pid)
    deadline = time.monotonic() + 3600
    try:
        while (rc := proc.poll()) is None:
            if abort is not None and abort.is_set():
                raise Aborted
            if time.monotonic() > deadline:
                raise TimeoutError("direct engine child still running after 3600 s")
            time.sleep(0.25)
    finally:
        kill_group(proc, grace=5)
        mine.discard(proc.pid)
    if rc != 0 or not out_path.exists():
        tail = logfile.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"direct engine child failed (rc={rc}):\n{tail}")
    return json.loads(out_path.read_text())


async def _abortable(coro: Any, abort: threading.Event | None) -> Any:
    task = asyncio.ensure_future(coro)
    while not task.done():
        if abort is not None and abort.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise Aborted
        await asyncio.wait({task}, timeout=0.25)
    return task.result()


def run_api(
    home: Path, spec: dict[str, Any], logfile: Path, mine: set[int], abort: threading.Event | None
) -> dict:
    t0 = time.perf_counter()
    with EgideServer(home, logfile, mine) as server:
        assert server.proc is not None
        if abort is not None and abort.is_set():
            raise Aborted
        start_s = time.perf_counter() - t0
        workload = api_workload(server.base, server.key, spec, server.proc.pid)
        result = asyncio.run(_abortable(workload, abort))
    result["load_s"] = start_s
    return result


# -- statistics ----------------------------------------------------------------------------


_EVAL_LINE = re.compile(r"\|\s+eval time =\s+([\d.]+) ms /\s+(\d+) tokens")


def engine_log_rates(logfile: Path, max_tokens: int, n_single: int) -> dict[str, list[float]]:
    """llama.cpp's own per-request decode rates (its ``print_timing`` lines, logged by both
    the direct child and ``egide serve``): the full-length requests in order are the
    one-stream ones, then the 8-stream batches."""
    rates = []
    for match in _EVAL_LINE.finditer(logfile.read_text(errors="replace")):
        ms, n = float(match.group(1)), int(match.group(2))
        if n == max_tokens and ms > 0:
            rates.append(n * 1000 / ms)
    return {"single": rates[:n_single], "concurrent": rates[n_single:]}


def phase_metrics(result: dict[str, Any]) -> dict[str, Any]:
    recs = result["records"]
    errors = [r["error"] for r in recs if r["error"]]
    single = [r for r in recs if r["kind"] == "single" and not r["error"]]
    conc = [r for r in recs if r["kind"] == "concurrent" and not r["error"]]

    def tokens(r: dict[str, Any]) -> int:
        return int(r["completion_tokens"] or 0)

    m: dict[str, Any] = {"errors": errors, "load_s": result.get("load_s")}
    tok = sum(tokens(r) for r in single)
    wall = sum(r["t_end"] - r["t_start"] for r in single)
    dec_t = sum(r["t_last"] - r["t_first"] for r in single if r["t_first"])
    m["single_tokens"] = tok
    m["single_tps"] = tok / wall if wall else None
    m["single_decode_tps"] = sum(max(tokens(r) - 1, 0) for r in single) / dec_t if dec_t else None
    m["single_ttft_ms"] = (
        statistics.median((r["t_first"] - r["t_start"]) * 1000 for r in single if r["t_first"])
        if single
        else None
    )
    m["single_chunks_per_token"] = sum(r["content_chunks"] for r in single) / tok if tok else None
    log_rates = result.get("engine_log_rates") or {}
    m["single_engine_log_decode_tps"] = med(log_rates.get("single") or [])
    conc_rates = log_rates.get("concurrent") or []
    sums = [sum(conc_rates[i : i + STREAMS]) for i in range(0, len(conc_rates), STREAMS)]
    m["concurrent_engine_log_decode_tps"] = med([x for x in sums if x])

    batches: dict[int, list[dict[str, Any]]] = {}
    for r in conc:
        batches.setdefault(r["batch"], []).append(r)
    agg, agg_dec, ttfts, conc_tok = [], [], [], 0
    for rs in batches.values():
        btok = sum(tokens(r) for r in rs)
        conc_tok += btok
        span = max(r["t_end"] for r in rs) - min(r["t_start"] for r in rs)
        agg.append(btok / span)
        firsts = [r["t_first"] for r in rs if r["t_first"]]
        lasts = [r["t_last"] for r in rs if r["t_last"]]
        if firsts and lasts:
            agg_dec.append(sum(max(tokens(r) - 1, 0) for r in rs) / (max(lasts) - min(firsts)))
        ttfts += [(r["t_first"] - r["t_start"]) * 1000 for r in rs if r["t_first"]]
    m["concurrent_tokens"] = conc_tok
    m["concurrent_tps"] = statistics.median(agg) if agg else None
    m["concurrent_decode_tps"] = statistics.median(agg_dec) if agg_dec else None
    m["concurrent_ttft_ms"] = statistics.median(ttfts) if ttfts else None
    m["completion_tokens_seen"] = sorted({tokens(r) for r in single + conc})
    m["finish_reasons"] = sorted({str(r["finish_reason"]) for r in single + conc})
    for part, n in (("single", m["single_tokens"]), ("concurrent", conc_tok)):
        e = (result.get("engine_cpu_s") or {}).get(part)
        c = (result.get("client_cpu_s") or {}).get(part)
        m[f"{part}_engine_cpu_ms_per_token"] = e * 1000 / n if e is not None and n else None
        m[f"{part}_client_cpu_ms_per_token"] = c * 1000 / n if c is not None and n else None
    return m


def med(values: list[Any]) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and v == v]
    return statistics.median(vals) if vals else None


def fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


# -- main ----------------------------------------------------------------------------------


def build_spec(args: argparse.Namespace, gguf: Path) -> tuple[dict, dict]:
    def bodies(prompts: list[int], max_tokens: int) -> list[dict[str, Any]]:
        return [api_body(PROMPTS[i], max_tokens, args.seed) for i in prompts]

    single_prompts = [i % len(PROMPTS) for i in range(args.single_requests)]
    api = {
        "warmup": {
            "concurrent": bodies(list(range(STREAMS)), WARMUP_TOKENS),
            "single": bodies([0], WARMUP_TOKENS)[0],
        },
        "single": bodies(single_prompts, args.max_tokens),
        "single_prompts": single_prompts,
        "concurrent": [bodies(list(range(STREAMS)), args.max_tokens)] * args.batches,
    }
    direct = {
        "gguf": str(gguf),
        "warmup": {
            "concurrent": [engine_body(b) for b in api["warmup"]["concurrent"]],
            "single": engine_body(api["warmup"]["single"]),
        },
        "single": [engine_body(b) for b in api["single"]],
        "single_prompts": single_prompts,
        "concurrent": [[engine_body(b) for b in bs] for bs in api["concurrent"]],
    }
    return api, direct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    child = sub.add_parser("_direct")
    child.add_argument("--spec", required=True)
    child.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=3, help="direct+API rounds (default 3)")
    parser.add_argument("--max-tokens", type=int, default=128, help="per request (default 128)")
    parser.add_argument("--home", default=None, help="reuse this EGIDE_HOME (kept afterwards)")
    parser.add_argument(
        "--single-requests",
        type=int,
        default=3,
        help="sequential one-stream requests per phase (default 3)",
    )
    parser.add_argument(
        "--batches",
        type=int,
        default=2,
        help="batches of 8 concurrent streams per phase (default 2)",
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--max-wait",
        type=float,
        default=1200.0,
        help="max seconds to wait for other heavy processes (default 1200)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=4,
        help="re-measure a phase another heavy process overlapped (default 4)",
    )
    parser.add_argument("--json", default=str(RESULTS_JSON), help="where to write results")
    args = parser.parse_args(argv)
    if args.cmd == "_direct":
        return direct_main(args)

    started = time.time()
    temp_home = args.home is None
    home = Path(args.home or tempfile.mkdtemp(prefix="egide-tput-home-")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="egide-tput-"))
    quiet = Quiet(args.max_wait)
    mine = quiet.mine
    redone: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    cpus = os.cpu_count()
    log(
        f"embedded throughput: model {MODEL_ID}, {cpus} CPUs, rounds={args.rounds}, "
        f"max_tokens={args.max_tokens}, single={args.single_requests}, "
        f"batches={args.batches}x{STREAMS}, seed={args.seed}, home={home}"
    )
    log(f"logs: {work}")
    try:
        gguf = home / "models" / GGUF_NAME
        if not gguf.exists():
            quiet.wait()
            log("assembling the default model (one egide serve start)...")
            with EgideServer(home, work / "egide-assemble.log", mine):
                pass
        if not gguf.exists():
            raise RuntimeError(f"{gguf} missing after egide serve started")
        api_spec, direct_spec = build_spec(args, gguf)
        spec_path = work / "direct-spec.json"
        spec_path.write_text(json.dumps(direct_spec))
        for rnd in range(1, args.rounds + 1):
            entry: dict[str, Any] = {"round": rnd}
            for side in ("direct", "api"):
                for attempt in range(1, args.retries + 2):
                    quiet.wait()
                    log(f"round {rnd}/{args.rounds}: {side} ...")
                    t0 = time.perf_counter()
                    tag = f"{side}-{rnd}-{attempt}"
                    last = attempt == args.retries + 1
                    abort = None if last else quiet.intruded
                    aborted = False
                    with quiet.watch():
                        try:
                            if side == "direct":
                                out = work / f"{tag}.json"
                                log_path = work / f"{tag}.log"
                                raw = run_direct(spec_path, out, log_path, mine, abort)
                            else:
                                raw = run_api(home, api_spec, work / f"{tag}.log", mine, abort)
                        except Aborted:
                            aborted = True
                    if not quiet.intruders or last:
                        break
                    log(
                        f"round {rnd}/{args.rounds}: {side}: another heavy process started "
                        f"during the phase; {'aborted' if aborted else 'discarded'} it after "
                        f"{time.perf_counter() - t0:.0f} s, will measure again:"
                    )
                    for pid, cmd in quiet.intruders.items():
                        print(f"      {pid} {cmd}", flush=True)
                    redone.append(
                        {
                            "round": rnd,
                            "side": side,
                            "attempt": attempt,
                            "intruders": [f"{p} {c}" for p, c in quiet.intruders.items()],
                        }
                    )
                    time.sleep(2)
                raw["overlapped_by"] = [f"{p} {c}" for p, c in quiet.intruders.items()]
                raw["engine_log_rates"] = engine_log_rates(
                    work / f"{tag}.log", args.max_tokens, args.single_requests
                )
                if raw["overlapped_by"]:
                    log(f"WARNING: kept a phase that overlapped {raw['overlapped_by']}")
                m = phase_metrics(raw)
                entry[side] = {"metrics": m, "raw": raw}
                log(
                    f"round {rnd}/{args.rounds}: {side}: 1 stream {fmt(m['single_tps'])} tok/s "
                    f"(decode {fmt(m['single_decode_tps'])}), {STREAMS} streams "
                    f"{fmt(m['concurrent_tps'])} tok/s (decode "
                    f"{fmt(m['concurrent_decode_tps'])}), tokens/request "
                    f"{m['completion_tokens_seen']}, errors {len(m['errors'])}, "
                    f"phase {time.perf_counter() - t0:.0f} s"
                )
                for e in m["errors"][:3]:
                    print(f"      error: {e}", flush=True)
                time.sleep(2)  # let the freed memory and threads settle
            rounds.append(entry)
    finally:
        for pid in list(mine):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if temp_home:
            shutil.rmtree(home, ignore_errors=True)

    report(args, rounds, quiet, redone, started, cpus, home if not temp_home else None, work)
    return 0


def report(
    args: argparse.Namespace,
    rounds: list[dict[str, Any]],
    quiet: Quiet,
    redone: list[dict[str, Any]],
    started: float,
    cpus: int | None,
    home: Path | None,
    work: Path,
) -> None:
    def col(side: str, key: str) -> list[Any]:
        return [r[side]["metrics"][key] for r in rounds]

    rows = [
        ("1 stream   tok/s (wall)", "single_tps", ".1f"),
        ("1 stream   tok/s (decode)", "single_decode_tps", ".1f"),
        ("1 stream   TTFT ms", "single_ttft_ms", ".0f"),
        (f"{STREAMS} streams  agg tok/s (wall)", "concurrent_tps", ".1f"),
        (f"{STREAMS} streams  agg tok/s (decode)", "concurrent_decode_tps", ".1f"),
        (f"{STREAMS} streams  TTFT ms (median)", "concurrent_ttft_ms", ".0f"),
        ("engine CPU ms/token, 1 stream", "single_engine_cpu_ms_per_token", ".2f"),
        (f"engine CPU ms/token, {STREAMS} streams", "concurrent_engine_cpu_ms_per_token", ".2f"),
        ("client CPU ms/token, 1 stream", "single_client_cpu_ms_per_token", ".2f"),
        (f"client CPU ms/token, {STREAMS} streams", "concurrent_client_cpu_ms_per_token", ".2f"),
        ("llama.cpp-logged decode, 1 stream", "single_engine_log_decode_tps", ".1f"),
        (f"llama.cpp-logged decode, {STREAMS} str. sum", "concurrent_engine_log_decode_tps", ".1f"),
        ("SSE/callback chunks per token", "single_chunks_per_token", ".2f"),
        ("model load / server start s", "load_s", ".1f"),
    ]
    summary: dict[str, dict[str, Any]] = {"direct": {}, "api": {}}
    print()
    print(
        f"Égide embedded engine throughput - {MODEL_ID} (Q4_K_M GGUF), {cpus} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    print(
        f"temperature 0, seed {args.seed}, max_tokens {args.max_tokens}, "
        f"{args.single_requests} one-stream requests + {args.batches} batches of {STREAMS} "
        f"streams per phase, {len(rounds)} rounds (direct, API alternating); medians over rounds"
    )
    print()
    header = f"{'':38} {'direct engine':>14} {'Égide API':>12} {'API/direct':>11}"
    print(header)
    print("-" * len(header))
    for label, key, spec in rows:
        d, a = med(col("direct", key)), med(col("api", key))
        summary["direct"][key], summary["api"][key] = d, a
        ratio = (
            a / d
            if a
            and d
            and key
            in (
                "single_tps",
                "single_decode_tps",
                "concurrent_tps",
                "concurrent_decode_tps",
                "single_engine_log_decode_tps",
                "concurrent_engine_log_decode_tps",
            )
            else None
        )
        print(f"{label:38} {fmt(d, spec):>14} {fmt(a, spec):>12} {fmt(ratio, '.3f'):>11}")
    print()
    print("per round (tok/s wall):  direct 1 / API 1 / ratio   |   direct 8 / API 8")
    paired = []
    for r in rounds:
        d1, a1 = r["direct"]["metrics"]["single_tps"], r["api"]["metrics"]["single_tps"]
        d8, a8 = r["direct"]["metrics"]["concurrent_tps"], r["api"]["metrics"]["concurrent_tps"]
        ratio = a1 / d1 if a1 and d1 else None
        paired.append(ratio)
        print(
            f"  round {r['round']}: {fmt(d1):>6} / {fmt(a1):>6} / {fmt(ratio, '.3f'):>6}"
            f"   |   {fmt(d8):>6} / {fmt(a8):>6}"
        )
    toks = sorted(
        {
            t
            for r in rounds
            for s in ("direct", "api")
            for t in r[s]["metrics"]["completion_tokens_seen"]
        }
    )
    finishes = sorted(
        {f for r in rounds for s in ("direct", "api") for f in r[s]["metrics"]["finish_reasons"]}
    )
    errors = sum(len(r[s]["metrics"]["errors"]) for r in rounds for s in ("direct", "api"))
    print(
        f"completion tokens per request seen: {toks}; finish reasons: {finishes}; errors: {errors}"
    )

    d1, a1 = summary["direct"]["single_tps"], summary["api"]["single_tps"]
    d8, a8 = summary["direct"]["concurrent_tps"], summary["api"]["concurrent_tps"]
    r1 = a1 / d1 if a1 and d1 else None
    r2 = a8 / a1 if a8 and a1 else None
    ok1 = r1 is not None and r1 >= 0.95
    ok2 = r2 is not None and r2 >= 2.0
    print()
    print("RATIOS")
    print(
        f"  1. one stream:  API / direct          = {fmt(r1, '.3f')}   "
        f"(goal >= 0.95)  {'PASS' if ok1 else 'FAIL'}"
        f"   [median of per-round ratios {fmt(med(paired), '.3f')}, "
        f"range {fmt(min((p for p in paired if p), default=None), '.3f')}"
        f"..{fmt(max((p for p in paired if p), default=None), '.3f')}]"
    )
    print(
        f"  2. {STREAMS} streams: API aggregate / API one = {fmt(r2, '.2f')}x   "
        f"(goal >= 2x)    {'PASS' if ok2 else 'FAIL'}"
    )
    print(
        f"     reference: direct {STREAMS}-stream aggregate {fmt(d8)} tok/s = "
        f"{fmt(d8 / d1 if d8 and d1 else None, '.2f')}x direct one stream; "
        f"API/direct at {STREAMS} streams = {fmt(a8 / d8 if a8 and d8 else None, '.3f')}"
    )
    waits = quiet.waits
    if waits or redone:
        print(
            f"  waited for other heavy processes {len(waits)} time(s), "
            f"{sum(w['waited_s'] for w in waits):.0f} s in total; phases measured again "
            f"because one overlapped them: {len(redone)}; tolerated: "
            f"{sorted(quiet.tolerated) or 'none'}"
        )
    print(f"  elapsed {time.time() - started:.0f} s")

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "bench": "embedded_throughput",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": {
            "cpus": cpus,
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "params": {
            "model": MODEL_ID,
            "gguf": GGUF_NAME,
            "rounds": args.rounds,
            "max_tokens": args.max_tokens,
            "temperature": 0,
            "seed": args.seed,
            "single_requests": args.single_requests,
            "batches": args.batches,
            "streams": STREAMS,
            "n_parallel": PARALLEL,
            "n_ctx": CONTEXT_LENGTH * PARALLEL,
            "n_threads": cpus,
            "prompts": PROMPTS,
            "home": str(home) if home else None,
        },
        "summary": summary,
        "ratios": {
            "one_stream_api_over_direct": r1,
            "one_stream_goal": 0.95,
            "one_stream_pass": ok1,
            "one_stream_paired_median": med(paired),
            "api_8_streams_over_api_1_stream": r2,
            "concurrency_goal": 2.0,
            "concurrency_pass": ok2,
            "direct_8_streams_over_direct_1_stream": d8 / d1 if d8 and d1 else None,
            "api_over_direct_8_streams": a8 / d8 if a8 and d8 else None,
        },
        "waits": waits,
        "redone_phases": redone,
        "tolerated_pids": sorted(quiet.tolerated),
        "rounds": rounds,
        "logs": str(work),
    }
    out.write_text(json.dumps(payload, indent=2))
    print(f"  results: {out}")


if __name__ == "__main__":
    sys.exit(main())
