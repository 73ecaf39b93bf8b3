"""Start a real ``egide serve`` process on loopback and wait until it answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EgideProcess:
    url: str
    key: str
    home: Path
    proc: subprocess.Popen[bytes]
    log: Path
    first_output: str = field(default="")

    @property
    def api(self) -> str:
        return self.url + "/v1"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_egide(
    home: Path,
    config_text: str | None = None,
    *,
    timeout: float = 300.0,
    extra_env: dict[str, str] | None = None,
) -> EgideProcess:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [sys.executable, "-m", "egide.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if config_text is not None:
        config = home / "egide.toml"
        config.write_text(config_text)
        args += ["--config", str(config)]
    env = {**os.environ, "EGIDE_HOME": str(home), **(extra_env or {})}
    log = home / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"egide serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code in (200, 503):
                break
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    else:
        proc.kill()
        raise RuntimeError(f"egide serve did not answer within {timeout}s:\n{log.read_text()}")
    key = (home / "admin.key").read_text().strip()
    return EgideProcess(url, key, home, proc, log, log.read_text())
