"""Shared fixtures. Every test runs under the network guard: any connection or name
lookup that is not loopback is refused and fails the session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "netguard"))
sys.path.insert(0, str(HERE))

from netguard_hook import install  # noqa: E402

from egide import offline  # noqa: E402

offline.apply()


def pytest_configure(config: pytest.Config) -> None:
    log = Path(config.rootpath) / ".pytest_cache" / "netguard.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    os.environ["EGIDE_NETGUARD_LOG"] = str(log)
    # Python subprocesses load tests/netguard/sitecustomize.py, which installs the guard.
    paths = [str(HERE / "netguard"), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    log = Path(os.environ["EGIDE_NETGUARD_LOG"])
    lines = [
        line
        for line in log.read_text().splitlines()
        if "192.0.2.1" not in line  # self-test
    ]
    if lines:
        sys.stderr.write(
            "\nnetguard: non-loopback network access was attempted:\n" + "\n".join(lines) + "\n"
        )
        session.exitstatus = 1


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory whose models/ is shared by every server the tests start."""
    return tmp_path_factory.mktemp("models-cache")


@pytest.fixture(scope="session")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real ``egide serve`` on the embedded defaults, with no configuration file."""
    from support.egide_process import start_egide

    server = start_egide(tmp_path_factory.mktemp("egide-home"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A real PostgreSQL server on loopback for the whole session."""
    import shutil
    import tempfile

    from support.postgres import start_postgres

    workdir = Path(tempfile.mkdtemp(prefix="egide-pg-"))  # traversable by the server user
    server = start_postgres(workdir)
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A migrated, empty state database of each kind."""
    import uuid

    from egide.store import open_database

    if request.param == "sqlite":
        db = open_database(tmp_path)
    else:
        server = request.getfixturevalue("postgres_server")
        db = open_database(tmp_path, server.create_database(f"t{uuid.uuid4().hex[:12]}"))
    yield db
    db.close()
