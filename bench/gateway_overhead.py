#!/usr/bin/env python3
"""Latency and throughput a gateway adds on top of one fast OpenAI-compatible upstream.

One run measures, against the same mock upstream:

1. ``direct``  - the mock hit directly (the baseline),
2. ``egide``   - through ``egide serve`` with an ``openai`` backend model pointing at the mock,
3. ``litellm`` - through the LiteLLM proxy (installed in the bench's own virtualenv,
   ``.bench-venv``, by ``bench/setup.sh``; never a dependency of egide).

For each target: latency at concurrency 1 (fixed request count) and at concurrency N
(closed loop, fixed duration), the req/s of the closed loop, and the *added* latency
(target percentile minus direct percentile at the same concurrency).

Processes: the mock upstream and the load generator are each their own process, raw
``asyncio.Protocol`` HTTP/1.1 keep-alive code on uvloop (when importable), so that neither
is the bottleneck. On a machine with >= 2 cores the gateway is pinned to CPU 0 and the
mock + load generator to CPU 1 (``--no-pin`` to disable). Only 127.0.0.1 is ever targeted
and every load loop is bounded in request count and in time.

Usage::

    .venv/bin/python bench/gateway_overhead.py                 # full run
    .venv/bin/python bench/gateway_overhead.py --skip-litellm  # quick run

Internal sub-commands (spawned by the orchestrator): ``_mock`` and ``_load``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT_VENV = ROOT / ".venv"
EGIDE_BIN = PROJECT_VENV / "bin" / "egide"
BENCH_VENV = Path(os.environ.get("BENCH_VENV", str(ROOT / ".bench-venv")))
SETUP_SH = ROOT / "bench" / "setup.sh"
RESULTS_DIR = ROOT / "bench" / "results"
RESULTS_JSON = RESULTS_DIR / "gateway_overhead.json"
HOST = "127.0.0.1"
MODEL = "mock"
GOAL_ADDED_P50_MS = 1.0
GOAL_RPS_RATIO = 5.0


def _install_uvloop() -> str:
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# --------------------------------------------------------------------------------------
# Mock upstream: raw asyncio.Protocol HTTP/1.1 keep-alive server, precomputed responses.
# --------------------------------------------------------------------------------------

_COMPLETION = {
    "id": "chatcmpl-mock0000000000000000000000",
    "object": "chat.completion",
    "created": 1735689600,
    "model": MODEL,
    "system_fingerprint": None,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
}
_MODELS = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "mock"}]}


def _http_response(status: str, body: bytes, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


_RESP_COMPLETION = _http_response("200 OK", _compact(_COMPLETION))
_RESP_MODELS = _http_response("200 OK", _compact(_MODELS))
_RESP_HEALTH = _http_response("200 OK", b'{"status":"ok"}')
_RESP_404 = _http_response("404 Not Found", b'{"error":{"message":"not found"}}')
_ROUTES = {
    (b"POST", b"/v1/chat/completions"): _RESP_COMPLETION,
    (b"POST", b"/chat/completions"): _RESP_COMPLETION,
    (b"GET", b"/v1/models"): _RESP_MODELS,
    (b"GET", b"/models"): _RESP_MODELS,
    (b"GET", b"/health"): _RESP_HEALTH,
}


def _header_value(lower_head: bytes, name: bytes) -> bytes | None:
    """Value of header ``name`` (lower-case, with colon) in a lower-cased header block."""
    i = lower_head.find(b"\r\n" + name)
    if i < 0:
        return None
    start = i + 2 + len(name)
    end = lower_head.find(b"\r\n", start)
    return lower_head[start : end if end >= 0 else None].strip()


def _chunked_end(buf: bytes, pos: int) -> int:
    """Index just past a complete chunked body starting at ``pos``, or -1 if incomplete."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return -1
        size = int(buf[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # optional trailers, then the empty line
            if buf.startswith(b"\r\n", eol + 2):
                return eol + 4
            return -1 if end < 0 else end + 4
        pos = eol + 2 + size + 2
        if pos > len(buf):
            return -1


class MockProtocol(asyncio.Protocol):
    __slots__ = ("buf", "transport")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""
        _nodelay(transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out: list[bytes] = []
        close = False
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            lower = head.lower()
            body_start = end + 4
            te = _header_value(lower, b"transfer-encoding:")
            if te is not None and b"chunked" in te:
                consumed = _chunked_end(buf, body_start)
                if consumed < 0:
                    break
            else:
                cl = _header_value(lower, b"content-length:")
                consumed = body_start + (int(cl) if cl else 0)
                if len(buf) < consumed:
                    break
            line_end = head.find(b"\r\n")
            parts = (head if line_end < 0 else head[:line_end]).split(b" ", 2)
            path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
            out.append(_ROUTES.get((parts[0], path), _RESP_404))
            buf = buf[consumed:]
            conn = _header_value(lower, b"connection:")
            if conn == b"close":
                close = True
                break
        self.buf = buf
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            self.transport.close()


def mock_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="gateway_overhead.py _mock")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)
    loop_kind = _install_uvloop()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(MockProtocol, HOST, a.port, backlog=1024)
        print(f"mock upstream listening on {HOST}:{a.port} ({loop_kind})", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(serve())


# --------------------------------------------------------------------------------------
# Load generator: callback-driven raw HTTP/1.1 keep-alive client, closed loop.
# --------------------------------------------------------------------------------------


class _Phase:
    """State of one load phase shared by all connections."""

    def __init__(self, remaining: int, deadline_ns: int, record: bool) -> None:
        self.remaining = remaining
        self.deadline_ns = deadline_ns
        self.record = record
        self.latencies = array("q")
        self.errors = 0
        self.statuses: Counter[int] = Counter()
        self.error_sample: str | None = None
        self.active = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def may_send(self) -> bool:
        if self.remaining <= 0 or time.perf_counter_ns() >= self.deadline_ns:
            return False
        self.remaining -= 1
        return True

    def idle(self) -> None:
        self.active -= 1
        if self.active <= 0 and not self.done.done():
            self.done.set_result(None)


class ClientProtocol(asyncio.Protocol):
    def __init__(self, request: bytes, gen: LoadGen) -> None:
        self.request = request
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.t0 = 0
        self.in_flight = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        _nodelay(transport)

    def send(self) -> None:
        assert self.transport is not None
        self.in_flight = True
        self.t0 = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            return
        lower = buf[:end].lower()
        body_start = end + 4
        te = _header_value(lower, b"transfer-encoding:")
        if te is not None and b"chunked" in te:
            consumed = _chunked_end(buf, body_start)
            if consumed < 0:
                self.buf = buf
                return
        else:
            cl = _header_value(lower, b"content-length:")
            if cl is None:  # body delimited by close: not expected from these servers
                self.buf = buf
                return
            consumed = body_start + int(cl)
            if len(buf) < consumed:
                self.buf = buf
                return
        t1 = time.perf_counter_ns()
        status = int(buf[9:12])
        body = buf[body_start:consumed]
        self.buf = buf[consumed:]
        self.in_flight = False
        close = _header_value(lower, b"connection:") == b"close"
        self.gen.completed(self, status, t1 - self.t0, body, close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.lost.done():
            self.lost.set_result(None)
        self.gen.lost(self)


class LoadGen:
    def __init__(self, port: int, request: bytes, concurrency: int) -> None:
        self.port = port
        self.request = request
        self.concurrency = concurrency
        self.conns: list[ClientProtocol] = []
        self.phase: _Phase | None = None
        self.reconnects = 0

    async def _connect(self) -> ClientProtocol:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(
            lambda: ClientProtocol(self.request, self), HOST, self.port
        )
        return proto

    async def open(self) -> None:
        self.conns = [await self._connect() for _ in range(self.concurrency)]

    def completed(
        self, conn: ClientProtocol, status: int, lat_ns: int, body: bytes, close: bool
    ) -> None:
        ph = self.phase
        if ph is None:  # a straggler after a timed-out phase
            return
        ph.statuses[status] += 1
        if status == 200:
            if ph.record:
                ph.latencies.append(lat_ns)
        else:
            ph.errors += 1
            if ph.error_sample is None:
                ph.error_sample = f"HTTP {status}: {body[:300]!r}"
        if close:
            ph.idle()
            self._reconnect(conn)
            return
        if ph.may_send():
            conn.send()
        else:
            ph.idle()

    def lost(self, conn: ClientProtocol) -> None:
        ph = self.phase
        if ph is not None and conn.in_flight:
            conn.in_flight = False
            ph.errors += 1
            if ph.error_sample is None:
                ph.error_sample = "connection lost mid-request"
            ph.idle()
            self._reconnect(conn)

    def _reconnect(self, old: ClientProtocol) -> None:
        async def again() -> None:
            self.reconnects += 1
            try:
                new = await self._connect()
            except OSError:
                return
            self.conns[self.conns.index(old)] = new
            ph = self.phase
            if ph is not None and not ph.done.done() and ph.may_send():
                ph.active += 1
                new.send()

        if old in self.conns:
            asyncio.get_running_loop().create_task(again())

    async def run(self, requests: int, duration_s: float, record: bool) -> dict[str, Any]:
        for i, conn in enumerate(self.conns):  # the server may have closed idle connections
            if conn.transport is None or conn.transport.is_closing():
                self.conns[i] = await self._connect()
                self.reconnects += 1
        start = time.perf_counter_ns()
        ph = _Phase(requests, start + int(duration_s * 1e9), record)
        self.phase = ph
        for conn in self.conns:
            if conn.transport is not None and ph.may_send():
                ph.active += 1
                conn.send()
        if ph.active == 0:
            ph.done.set_result(None)
        # Bounded wait: the deadline plus a grace period for the in-flight requests.
        try:
            await asyncio.wait_for(asyncio.shield(ph.done), duration_s + 30.0)
        except TimeoutError:
            ph.error_sample = ph.error_sample or "phase timed out waiting for responses"
        elapsed = (time.perf_counter_ns() - start) / 1e9
        self.phase = None
        return _summarize(ph, elapsed)


def _percentile(sorted_vals: list[int], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    idx = max(0, math.ceil(q * len(sorted_vals)) - 1)
    return float(sorted_vals[idx])


def _summarize(ph: _Phase, elapsed: float) -> dict[str, Any]:
    lat = sorted(ph.latencies)
    n = len(lat)
    us = 1e-3
    return {
        "n": n,
        "errors": ph.errors,
        "statuses": {str(k): v for k, v in sorted(ph.statuses.items())},
        "elapsed_s": round(elapsed, 4),
        "rps": round(n / elapsed, 1) if elapsed > 0 else 0.0,
        "mean_us": round(sum(lat) / n * us, 1) if n else float("nan"),
        "min_us": round(lat[0] * us, 1) if n else float("nan"),
        "p50_us": round(_percentile(lat, 0.50) * us, 1),
        "p90_us": round(_percentile(lat, 0.90) * us, 1),
        "p99_us": round(_percentile(lat, 0.99) * us, 1),
        "max_us": round(lat[-1] * us, 1) if n else float("nan"),
        "error_sample": ph.error_sample,
        "_lat": ph.latencies,
    }


def build_request(port: int, model: str, api_key: str | None) -> bytes:
    body = _compact(
        {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
    )
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        "User-Agent: egide-bench\r\n"
        "Accept: application/json\r\n"
        "Content-Type: application/json\r\n"
        + (f"Authorization: Bearer {api_key}\r\n" if api_key else "")
        + f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def load_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="gateway_overhead.py _load")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model", default=MODEL)
    p.add_argument("--api-key-file", default=None)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--requests", type=int, required=True, help="max measured requests")
    p.add_argument("--duration", type=float, required=True, help="max measured seconds")
    p.add_argument("--warmup-requests", type=int, default=200)
    p.add_argument("--warmup-duration", type=float, default=2.0)
    p.add_argument("--raw", action="store_true", help="include every latency (base64 int64 ns)")
    a = p.parse_args(argv)
    loop_kind = _install_uvloop()
    key = Path(a.api_key_file).read_text().strip() if a.api_key_file else None

    async def go() -> dict[str, Any]:
        gen = LoadGen(a.port, build_request(a.port, a.model, key), a.concurrency)
        await gen.open()
        warm = await gen.run(a.warmup_requests, a.warmup_duration, record=False)
        res = await gen.run(a.requests, a.duration, record=True)
        res["warmup"] = {k: warm[k] for k in ("errors", "statuses", "elapsed_s", "error_sample")}
        if a.raw:
            res["lat_ns_b64"] = base64.b64encode(res.pop("_lat").tobytes()).decode()
        res.pop("_lat", None)
        res["concurrency"] = a.concurrency
        res["reconnects"] = gen.reconnects
        res["loop"] = loop_kind
        for c in gen.conns:
            if c.transport is not None:
                c.transport.close()
        return res

    print(json.dumps(asyncio.run(go())), flush=True)


# --------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never use a proxy


def _http(
    method: str, url: str, body: Any = None, key: str | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    data = _compact(body) if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError) as e:
        return 0, str(e).encode()


def _helper_python() -> str:
    """An interpreter with uvloop for the mock and the load generator, if there is one."""
    candidates = [sys.executable, str(BENCH_VENV / "bin/python"), str(PROJECT_VENV / "bin/python")]
    for py in candidates:
        if Path(py).exists():
            ok = subprocess.run([py, "-c", "import uvloop"], capture_output=True).returncode == 0
            if ok:
                return py
    return sys.executable


class Proc:
    """A child process in its own process group, optionally pinned to CPUs, logged to a file."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        log: Path,
        cpus: set[int] | None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self._logf = log.open("wb")

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        self.p = subprocess.Popen(
            cmd,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=pin,
        )

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=8)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=5)
        # Children left in the group (workers) after the leader exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.p.pid, signal.SIGKILL)
        self._logf.close()


def _wait(pred: Any, timeout: float, what: str, proc: Proc | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what}: {proc.name} exited ({proc.p.returncode})\n{proc.tail()}")
        last = pred()
        if last:
            return last
        time.sleep(0.1)
    tail = f"\n{proc.tail()}" if proc else ""
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


def _check_completion(port: int, key: str | None) -> tuple[bool, str]:
    status, body = _http(
        "POST",
        f"http://{HOST}:{port}/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16},
        key,
    )
    if status != 200:
        return False, f"HTTP {status}: {body[:400]!r}"
    try:
        obj = json.loads(body)
        ok = (
            obj["choices"][0]["message"]["content"]
            == _COMPLETION["choices"][0]["message"]["content"]
        )
    except (ValueError, KeyError, IndexError, TypeError):
        ok = False
    return ok, body[:400].decode(errors="replace")


def egide_usable() -> tuple[bool, str]:
    if not EGIDE_BIN.exists():
        return False, f"{EGIDE_BIN} not found"
    r = subprocess.run([str(EGIDE_BIN), "--help"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or "serve" not in r.stdout:
        return False, f"`egide --help` failed or lists no `serve`: {(r.stdout + r.stderr)[-400:]}"
    return True, ""


def egide_version() -> str:
    r = subprocess.run(
        [str(PROJECT_VENV / "bin/python"), "-c", "import egide; print(egide.__version__)"],
        capture_output=True,
        text=True,
    )
    return r.stdout.strip() or "?"


def litellm_version() -> str | None:
    py = BENCH_VENV / "bin/python"
    if not py.exists():
        return None
    r = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return r.stdout.strip() or None


def ensure_litellm() -> None:
    if not (BENCH_VENV / "bin/litellm").exists():
        print(f"LiteLLM missing: running {SETUP_SH} ...", flush=True)
        subprocess.run(["bash", str(SETUP_SH)], check=True)


def start_egide(work: Path, mock_port: int, cpus: set[int] | None) -> tuple[Proc, int, str]:
    home = work / "egide-home"
    home.mkdir()
    cfg = work / "egide.toml"
    cfg.write_text(
        "default_models = false\n"
        'log_level = "warning"\n'
        "[[models]]\n"
        f'id = "{MODEL}"\n'
        'backend = "openai"\n'
        'capabilities = ["chat", "streaming"]\n'
        "[[models.deployments]]\n"
        f'url = "http://{HOST}:{mock_port}/v1"\n'
    )
    port = _free_port()
    env = {**os.environ, "EGIDE_HOME": str(home)}
    env.pop("EGIDE_CONFIG", None)
    cmd = [str(EGIDE_BIN), "serve", "--host", HOST, "--port", str(port), "--config", str(cfg)]
    proc = Proc("egide", cmd, work / "egide.log", cpus, env=env, cwd=work)
    keyfile = home / "admin.key"
    _wait(lambda: keyfile.exists() and keyfile.read_text().strip(), 60, "admin.key", proc)
    _wait(lambda: _http("GET", f"http://{HOST}:{port}/health")[0] == 200, 60, "/health", proc)
    return proc, port, str(keyfile)


def start_litellm(work: Path, mock_port: int, cpus: set[int] | None) -> tuple[Proc, int, None]:
    cfg = work / "litellm.yaml"
    cfg.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://{HOST}:{mock_port}/v1\n"
        "      api_key: x\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  set_verbose: false\n"
        "  turn_off_message_logging: true\n"
        "general_settings:\n"
        "  disable_spend_logs: true\n"
    )
    # Minimal logging: warnings only, and no per-request access log line.
    log_cfg = work / "litellm-logging.json"
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    log_cfg.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"default": handler},
                "loggers": {
                    "uvicorn": {"handlers": ["default"], "level": "WARNING"},
                    "uvicorn.error": {"level": "WARNING"},
                    "uvicorn.access": {"handlers": [], "level": "ERROR", "propagate": False},
                },
            }
        )
    )
    port = _free_port()
    env = {
        **os.environ,
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the remote price list
        "LITELLM_MODE": "PRODUCTION",  # no .env loading
        "DISABLE_ADMIN_UI": "True",
    }
    for var in ("DATABASE_URL", "LITELLM_MASTER_KEY", "REDIS_HOST", "REDIS_URL"):
        env.pop(var, None)
    cmd = [
        str(BENCH_VENV / "bin/litellm"),
        "--config",
        str(cfg),
        "--host",
        HOST,
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
        "--log_config",
        str(log_cfg),
    ]
    proc = Proc("litellm", cmd, work / "litellm.log", cpus, env=env, cwd=work)
    _wait(
        lambda: _http("GET", f"http://{HOST}:{port}/health/liveliness")[0] == 200,
        180,
        "LiteLLM /health/liveliness",
        proc,
    )
    return proc, port, None


def run_load(
    py: str,
    port: int,
    keyfile: str | None,
    concurrency: int,
    requests: int,
    duration: float,
    warmup_requests: int,
    warmup_duration: float,
    cpus: set[int] | None,
    work: Path,
    tag: str,
) -> dict[str, Any]:
    cmd = [
        py,
        str(Path(__file__).resolve()),
        "_load",
        "--port",
        str(port),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--duration",
        str(duration),
        "--warmup-requests",
        str(warmup_requests),
        "--warmup-duration",
        str(warmup_duration),
    ]
    if keyfile:
        cmd += ["--api-key-file", keyfile]
    cmd.append("--raw")
    out = work / f"load-{tag}.json"
    with out.open("wb") as f, (work / f"load-{tag}.err").open("wb") as ferr:
        p = subprocess.Popen(
            cmd,
            stdout=f,
            stderr=ferr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        try:
            p.wait(timeout=warmup_duration + duration + 90)
        except BaseException as exc:  # timeout, Ctrl-C: never leave a load loop behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise RuntimeError(f"load generator {tag} timed out") from None
            raise
    if p.returncode != 0:
        err = (work / f"load-{tag}.err").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"load generator {tag} failed ({p.returncode}):\n{err}")
    return dict(json.loads(out.read_text()))


def profile_with_pyspy(pid: int, seconds: float, out_prefix: Path) -> dict[str, Any] | None:
    """py-spy record (raw collapsed stacks) of ``pid``; returns the top frames by self time."""
    pyspy = shutil.which("py-spy") or str(BENCH_VENV / "bin/py-spy")
    if not Path(pyspy).exists():
        print("py-spy not found: skipping the profile", flush=True)
        return None
    raw = out_prefix.with_suffix(".txt")
    cmd = [
        pyspy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
        "--rate", "250", "--format", "raw", "--function", "--nonblocking", "--output", str(raw),
    ]  # fmt: skip
    return {"cmd": cmd, "raw": raw}


def _frame_package(frame: str) -> str:
    """``'f (aiohttp/client.py:12)'`` -> ``'aiohttp'``; the event loop's own C code -> 'loop'."""
    if frame.startswith("Runner.run (asyncio/runners.py"):
        return "event loop (uvloop C code, I/O syscalls)"
    lpar = frame.rfind(" (")
    path = frame[lpar + 2 : -1] if lpar >= 0 else frame
    path = path.rsplit(":", 1)[0]
    if path.startswith("<frozen"):
        return "importlib"
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/src/" in path:
        path = path.split("/src/", 1)[1]
    head = path.split("/", 1)[0]
    if head.endswith(".py"):
        return f"stdlib:{head[:-3]}" if "/" not in path else head
    if head in {"asyncio", "concurrent", "json", "logging", "email", "http", "urllib", "re"}:
        return f"stdlib:{head}"
    return head


def summarize_collapsed(raw: Path, top: int = 30) -> dict[str, Any]:
    """Self and inclusive share of samples per frame from py-spy's collapsed output."""
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    pkg_c: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_c[frames[-1]] += count
        pkg_c[_frame_package(frames[-1])] += count
        for f in set(frames):
            incl_c[f] += count
    if total == 0:
        return {"samples": 0, "self": [], "self_by_package": [], "inclusive_egide": []}

    def pct(c: Counter[str], filt: Any = None, n: int = top) -> list[tuple[str, float]]:
        items = [(k, v) for k, v in c.most_common() if filt is None or filt(k)]
        return [(k, round(100.0 * v / total, 1)) for k, v in items[:n]]

    return {
        "samples": total,
        "self": pct(self_c),
        "self_by_package": pct(pkg_c, n=15),
        "inclusive_egide": pct(incl_c, lambda k: "(egide/" in k),
    }


def wait_first_completion(name: str, port: int, keyfile: str | None) -> None:
    key = Path(keyfile).read_text().strip() if keyfile else None
    deadline = time.monotonic() + 60
    while True:
        ok, detail = _check_completion(port, key)
        if ok:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no successful completion through {name}: {detail}")
        time.sleep(0.5)


def merge_phases(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary from the per-round phases: all latencies pooled, req/s = n / time."""
    lat = array("q")
    statuses: Counter[int] = Counter()
    ph = _Phase.__new__(_Phase)  # reuse _summarize without an event loop
    ph.errors = sum(p["errors"] for p in parts)
    ph.error_sample = next((p["error_sample"] for p in parts if p["error_sample"]), None)
    for p in parts:
        lat.frombytes(base64.b64decode(p.pop("lat_ns_b64")))
        statuses.update({int(k): v for k, v in p["statuses"].items()})
    ph.latencies = lat
    ph.statuses = statuses
    merged = _summarize(ph, sum(p["elapsed_s"] for p in parts))
    merged.pop("_lat")
    merged["rounds"] = [
        {k: p[k] for k in ("n", "errors", "elapsed_s", "rps", "p50_us", "p99_us")} for p in parts
    ]
    return merged


def _fmt_phase(r: dict[str, Any]) -> str:
    err = f"  errors={r['errors']} ({r['error_sample']})" if r["errors"] else ""
    return (
        f"n={r['n']} p50={r['p50_us'] / 1000:.3f}ms p99={r['p99_us'] / 1000:.3f}ms "
        f"rps={r['rps']:.0f}{err}"
    )


def _ms(us: float | None) -> str:
    if us is None or (isinstance(us, float) and math.isnan(us)):
        return "-"
    return f"{us / 1000:.3f}"


def report(results: dict[str, Any], conc: int) -> str:
    t = results["targets"]
    base = t.get("direct")
    lines = []
    hdr = (
        f"{'target':<9} {'c1 p50':>8} {'c1 p99':>8} {'+p50 c1':>8} {'+p99 c1':>8} "
        f"{'c' + str(conc) + ' p50':>8} {'c' + str(conc) + ' p99':>8} "
        f"{'+p50 c' + str(conc):>9} {'+p99 c' + str(conc):>9} {'req/s':>8} {'errors':>6}"
    )
    lines.append("latencies in ms; '+' = added over direct at the same concurrency")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for name, r in t.items():
        if "error" in r:
            lines.append(f"{name:<9} FAILED: {r['error'].splitlines()[0][:90]}")
            continue
        a = r.get("added", {})
        errors = r["c1"]["errors"] + r["cN"]["errors"]
        lines.append(
            f"{name:<9} {_ms(r['c1']['p50_us']):>8} {_ms(r['c1']['p99_us']):>8} "
            f"{_ms(a.get('c1_p50_us')) if base else '-':>8} "
            f"{_ms(a.get('c1_p99_us')) if base else '-':>8} "
            f"{_ms(r['cN']['p50_us']):>8} {_ms(r['cN']['p99_us']):>8} "
            f"{_ms(a.get('cN_p50_us')) if base else '-':>9} "
            f"{_ms(a.get('cN_p99_us')) if base else '-':>9} "
            f"{r['cN']['rps']:>8.0f} {errors:>6}"
        )
    j = results["judged"]
    lines.append("")
    if j.get("egide_added_p50_ms") is not None:
        mark = "OK" if j["egide_added_p50_ms"] <= GOAL_ADDED_P50_MS else "MISSED"
        lines.append(
            f"Égide added p50 (c=1): {j['egide_added_p50_ms']:.3f} ms   "
            f"(goal <= {GOAL_ADDED_P50_MS:g} ms: {mark})"
        )
    if j.get("rps_ratio_egide_over_litellm") is not None:
        mark = "OK" if j["rps_ratio_egide_over_litellm"] >= GOAL_RPS_RATIO else "MISSED"
        lines.append(
            f"Égide req/s ÷ LiteLLM req/s (c={conc}): {j['rps_ratio_egide_over_litellm']:.2f}   "
            f"(goal >= {GOAL_RPS_RATIO:g}: {mark}); per round: "
            + ", ".join(f"{x:.1f}" for x in j.get("rps_ratio_per_round", []) if x is not None)
        )
    if j.get("egide_rps_share_of_direct") is not None:
        lines.append(f"Égide req/s ÷ direct req/s: {j['egide_rps_share_of_direct']:.3f}")
    return "\n".join(lines)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def orchestrate(args: argparse.Namespace) -> int:
    # Ctrl-C or a plain kill still runs the clean-up below (even when started in the
    # background, where the shell leaves SIGINT ignored).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.skip_litellm and "litellm" in targets:
        targets.remove("litellm")
    if args.skip_egide and "egide" in targets:
        targets.remove("egide")
    if "egide" in targets:
        ok, why = egide_usable()
        if not ok:
            print(f"Égide is not usable yet: {why}", file=sys.stderr)
            return 2
    if "litellm" in targets:
        ensure_litellm()

    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = not args.no_pin and len(cpus) >= 2
    gw_cpus = {cpus[0]} if pin else None
    load_cpus = {cpus[1]} if pin else None
    py = _helper_python()
    placement = (
        f"gateway pinned to CPU {cpus[0]}; mock upstream + load generator pinned to CPU {cpus[1]}"
        if pin
        else "no CPU pinning: mock, gateway and load generator share all cores"
    )
    print(f"{ncpu} CPUs visible; {placement}", flush=True)
    print(
        "note: on a small shared machine the mock, the gateway and the load generator compete"
        " for CPU; compare ratios within one run, not absolute numbers across runs",
        flush=True,
    )

    results: dict[str, Any] = {
        "bench": "gateway_overhead",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "requests_c1": args.requests_c1,
            "c1_max_seconds": args.c1_max_seconds,
            "rounds": args.rounds,
            "targets": targets,
        },
        "environment": {
            "cpus": ncpu,
            "placement": placement,
            "python": platform.python_version(),
            "helper_python": py,
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
            "egide_version": egide_version() if "egide" in targets else None,
            "litellm_version": litellm_version() if "litellm" in targets else None,
        },
        "targets": {},
    }

    procs: list[Proc] = []
    work = Path(tempfile.mkdtemp(prefix="egide-bench-"))
    try:
        mock_port = _free_port()
        mock = Proc(
            "mock", [py, str(Path(__file__).resolve()), "_mock", "--port", str(mock_port)],
            work / "mock.log", load_cpus,
        )  # fmt: skip
        procs.append(mock)
        _wait(
            lambda: _http("GET", f"http://{HOST}:{mock_port}/v1/models")[0] == 200,
            20, "mock upstream", mock,
        )  # fmt: skip
        print(f"mock upstream on :{mock_port} ({mock.tail(1)})", flush=True)

        # Start every target first, then measure them in interleaved rounds, so that a
        # change in the background load of the machine hits all of them alike.
        live: dict[str, tuple[int, str | None, Proc | None]] = {}
        for name in targets:
            gw: Proc | None = None
            try:
                if name == "direct":
                    port, keyfile = mock_port, None
                elif name == "egide":
                    gw, port, keyfile = start_egide(work, mock_port, gw_cpus)
                elif name == "litellm":
                    gw, port, keyfile = start_litellm(work, mock_port, gw_cpus)
                else:
                    raise ValueError(f"unknown target {name!r}")
                if gw is not None:
                    procs.append(gw)
                wait_first_completion(name, port, keyfile)
                live[name] = (port, keyfile, gw)
                print(f"[{name}] up on :{port}, first completion OK", flush=True)
            except Exception as e:  # one failed target must not lose the others
                msg = f"{type(e).__name__}: {e}"
                print(f"[{name}] FAILED to start: {msg}", flush=True)
                results["targets"][name] = {"error": msg}
                if gw is not None:
                    gw.stop()
                    if gw in procs:
                        procs.remove(gw)

        parts: dict[str, dict[str, list[dict[str, Any]]]] = {n: {"c1": [], "cN": []} for n in live}
        rounds = args.rounds
        c1_per_round = max(1, args.requests_c1 // rounds)
        dur_per_round = args.duration / rounds
        order = list(live)
        for rnd in range(rounds):
            warm = args.warmup if rnd == 0 else min(args.warmup, 0.5)
            rotated = order[rnd % len(order) :] + order[: rnd % len(order)] if order else []
            print(f"== round {rnd + 1}/{rounds} (order: {', '.join(rotated)})", flush=True)
            for conc, key, reqs, dur, wreq in (
                (1, "c1", c1_per_round, args.c1_max_seconds / rounds, max(50, c1_per_round // 10)),
                (args.concurrency, "cN", 10**9, dur_per_round, 10**9),
            ):
                for name in rotated:
                    if name in results["targets"]:
                        continue  # failed in an earlier phase
                    port, keyfile, _ = live[name]
                    try:
                        r = run_load(
                            py, port, keyfile, conc, reqs, dur, wreq, warm,
                            load_cpus, work, f"{name}-{key}-r{rnd}",
                        )  # fmt: skip
                    except Exception as e:
                        msg = f"{type(e).__name__}: {e}"
                        print(f"  [{name}] FAILED: {msg}", flush=True)
                        results["targets"][name] = {"error": msg}
                        continue
                    parts[name][key].append(r)
                    print(f"  [{name}] c={conc:<3}: {_fmt_phase(r)}", flush=True)

        for name, (_port, _keyfile, gw) in live.items():
            if name in results["targets"]:
                continue
            res: dict[str, Any] = {
                "c1": merge_phases(parts[name]["c1"]),
                "cN": merge_phases(parts[name]["cN"]),
            }
            if gw is not None:  # the admin key of the throw-away home is printed at start
                res["gateway_log_tail"] = re.sub(r"egk_[\w-]+", "egk_<redacted>", gw.tail(15))
            results["targets"][name] = res
        if args.profile_egide and "egide" in live and "error" not in results["targets"]["egide"]:
            port, keyfile, gw = live["egide"]
            assert gw is not None
            results["targets"]["egide"]["profile"] = run_profile(
                gw, port, keyfile, args, py, load_cpus, work
            )
    finally:
        for p in reversed(procs):
            p.stop()
        if args.keep_work:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    # Added latency and the judged ratios.
    t = results["targets"]
    base = t.get("direct")
    if base and "error" not in base:
        for r in t.values():
            if "error" in r:
                continue
            r["added"] = {
                "c1_p50_us": round(r["c1"]["p50_us"] - base["c1"]["p50_us"], 1),
                "c1_p99_us": round(r["c1"]["p99_us"] - base["c1"]["p99_us"], 1),
                "cN_p50_us": round(r["cN"]["p50_us"] - base["cN"]["p50_us"], 1),
                "cN_p99_us": round(r["cN"]["p99_us"] - base["cN"]["p99_us"], 1),
            }
    eg = t.get("egide")
    ll = t.get("litellm")
    judged: dict[str, Any] = {}
    if eg and "added" in eg:
        judged["egide_added_p50_ms"] = round(eg["added"]["c1_p50_us"] / 1000, 4)
        judged["egide_added_p50_ms_goal"] = GOAL_ADDED_P50_MS
        if base:
            judged["egide_rps_share_of_direct"] = round(eg["cN"]["rps"] / base["cN"]["rps"], 4)
    if eg and ll and "error" not in eg and "error" not in ll and ll["cN"]["rps"] > 0:
        judged["rps_ratio_egide_over_litellm"] = round(eg["cN"]["rps"] / ll["cN"]["rps"], 3)
        judged["rps_ratio_per_round"] = [
            round(a["rps"] / b["rps"], 2) if b["rps"] else None
            for a, b in zip(eg["cN"]["rounds"], ll["cN"]["rounds"], strict=False)
        ]
        judged["rps_ratio_goal"] = GOAL_RPS_RATIO
    results["judged"] = judged
    results["environment"]["loadavg_end"] = os.getloadavg()

    text = report(results, args.concurrency)
    print()
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults written to {out}")
    failed = [n for n, r in t.items() if "error" in r]
    return 1 if failed else 0


def run_profile(
    gw: Proc,
    port: int,
    keyfile: str | None,
    args: argparse.Namespace,
    py: str,
    load_cpus: set[int] | None,
    work: Path,
) -> dict[str, Any] | None:
    """Extra closed-loop run under py-spy (not used for the reported numbers)."""
    prefix = RESULTS_DIR / "egide-profile"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    spec = profile_with_pyspy(gw.pid, args.duration, prefix)
    if spec is None:
        return None
    print(f"  [egide] profiling with py-spy for {args.duration:.0f}s ...", flush=True)
    spy = subprocess.Popen(spec["cmd"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        load = run_load(
            py, port, keyfile, args.concurrency, 10**9, args.duration + 1.0,
            0, 0.0, load_cpus, work, "egide-profile",
        )  # fmt: skip
        spy.wait(timeout=args.duration + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    load.pop("lat_ns_b64", None)
    summary = summarize_collapsed(spec["raw"]) if spec["raw"].exists() else {}
    print(f"  [egide] under profiler: {_fmt_phase(load)}; collapsed stacks: {spec['raw']}")
    print("    self time by package (share of samples):")
    for pkg, share in summary.get("self_by_package", []):
        print(f"      {share:5.1f}%  {pkg}")
    print("    top functions by self time:")
    for frame, share in summary.get("self", [])[:20]:
        print(f"      {share:5.1f}%  {frame}")
    print("    Égide functions by inclusive time (await time inside callees included):")
    for frame, share in summary.get("inclusive_egide", [])[:15]:
        print(f"      {share:5.1f}%  {frame}")
    return {"raw": str(spec["raw"]), "summary": summary, "load": load}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_mock":
        mock_main(sys.argv[2:])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_load":
        load_main(sys.argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="closed-loop seconds per target, split over the rounds (default 10)",
    )
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per phase")
    p.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    p.add_argument(
        "--requests-c1",
        type=int,
        default=2000,
        help="requests at concurrency 1 per target (default 2000)",
    )
    p.add_argument(
        "--c1-max-seconds", type=float, default=60.0, help="time cap of the concurrency-1 phase"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds: each target's measurements are split over them (default 3)",
    )
    p.add_argument("--targets", default="direct,egide,litellm")
    p.add_argument("--skip-litellm", action="store_true", help="quick run without LiteLLM")
    p.add_argument("--skip-egide", action="store_true", help="harness check without Égide")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument(
        "--profile-egide",
        action="store_true",
        help="after measuring, run py-spy on Égide during an extra closed-loop run",
    )
    p.add_argument("--keep-work", action="store_true", help="keep the temp dir (logs, configs)")
    p.add_argument("--json", default=str(RESULTS_JSON), help="where to write the JSON results")
    args = p.parse_args()
    if args.duration <= 0 or args.duration > 600 or args.concurrency < 1 or args.concurrency > 1024:
        p.error("--duration must be in (0, 600] and --concurrency in [1, 1024]")
    try:
        return orchestrate(args)
    except KeyboardInterrupt:
        print("\ninterrupted: every process this bench started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
