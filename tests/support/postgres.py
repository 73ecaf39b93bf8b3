"""A throwaway PostgreSQL cluster on loopback, started and stopped by the tests."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from support.egide_process import free_port


@dataclass
class PostgresServer:
    url: str
    datadir: Path
    bindir: Path
    user: str | None

    def create_database(self, name: str) -> str:
        self._run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                self.port,
                "-U",
                "egide",
                "-d",
                "postgres",
                "-c",
                f'CREATE DATABASE "{name}"',
            ]
        )
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    @property
    def port(self) -> str:
        return self.url.rsplit(":", 1)[1].split("/")[0]

    def stop(self) -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "stop"])

    def _run(self, args: list[str]) -> None:
        if self.user:
            args = ["runuser", "-u", self.user, "--", *args]
        subprocess.run(args, check=True, capture_output=True, timeout=60)


def find_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if found:
        return Path(found[-1]).parent
    postgres = shutil.which("postgres")
    return Path(postgres).parent if postgres else None


def start_postgres(workdir: Path) -> PostgresServer:
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: run scripts/ensure-postgres")
    user = None
    if os.getuid() == 0:  # the server refuses to run as root
        user = "postgres"
        pwd.getpwnam(user)
    datadir = workdir / "pgdata"
    workdir.mkdir(parents=True, exist_ok=True)
    if user:
        shutil.chown(workdir, user)
    port = free_port()
    server = PostgresServer(f"postgresql://egide@127.0.0.1:{port}/postgres", datadir, bindir, user)
    server._run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "egide",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]
    )
    server._run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(workdir / "pg.log"),
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off",
            "start",
        ]
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            import psycopg

            psycopg.connect(server.url, connect_timeout=2).close()
            return server
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not start:\n{(workdir / 'pg.log').read_text()}")
