"""The store behaves the same on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
from pathlib import Path

from egide.store.artefacts import ArtefactRecord, ArtefactRepository
from egide.store.keys import KeyRepository, digest
from egide.store.migrations import MIGRATIONS


def test_migrations_are_applied_once(database) -> None:
    assert database.migrate() == len(MIGRATIONS)
    versions = [r[0] for r in database.query("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_artefact_round_trip_and_upsert(database) -> None:
    repo = ArtefactRepository(database)
    record = ArtefactRecord("m", Path("/m.gguf"), "a" * 64, "gguf", "file:/m.gguf", 5_000_000_000)
    repo.put(record)
    repo.put(ArtefactRecord("m", Path("/m2.gguf"), "b" * 64, "gguf", "file:/m2.gguf", 1))
    got = repo.get("m")
    assert (got.path, got.sha256, got.size_bytes) == (Path("/m2.gguf"), "b" * 64, 1)
    assert got.registered_at.endswith("Z")
    assert [r.id for r in repo.all()] == ["m"]


def test_keys_are_stored_as_digests(database) -> None:
    repo = KeyRepository(database)
    key, record = repo.create("platform-admin")
    assert repo.lookup(digest(key)) == record
    stored = database.query("SELECT prefix, sha256 FROM api_keys")[0]
    assert key not in (stored["prefix"], stored["sha256"]) and key.startswith(stored["prefix"])


def test_keys_scoped_expiring_and_revoked(database) -> None:
    from datetime import UTC, datetime, timedelta

    from egide.store.orgs import OrgRepository
    from egide.store.users import UserRepository

    OrgRepository(database).create("minarm", "Ministère")
    user = UserRepository(database).create("alice", "minarm", "fra", "S//ALPHA")
    repo = KeyRepository(database)
    now = datetime.now(UTC)
    key, record = repo.create(
        "user", user_id=user.id, models=frozenset({"m1"}), expires_at=now + timedelta(hours=1)
    )
    assert record.models == frozenset({"m1"}) and record.usable(now)
    assert not record.usable(now + timedelta(hours=2))
    repo.revoke(record.id)
    assert not repo.lookup(digest(key)).usable(now)
    assert [k.id for k in repo.for_users([user.id])] == [record.id]


def test_literal_percent_and_placeholders(database) -> None:
    repo = ArtefactRepository(database)
    repo.put(ArtefactRecord("a%b?", Path("/x"), "c" * 64, "gguf", "100%", 1))
    rows = database.query("SELECT id FROM artefacts WHERE source LIKE ? AND id = ?", ("1%", "a%b?"))
    assert [r["id"] for r in rows] == ["a%b?"]


def test_transactions_serialise_read_modify_write(database) -> None:
    with database.transaction() as conn:
        conn.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO counter (n) VALUES (0)")

    def bump() -> None:
        for _ in range(50):
            with database.transaction() as conn:
                n = conn.execute("SELECT n FROM counter").fetchone()[0]
                conn.execute("UPDATE counter SET n = ?", (n + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert database.query("SELECT n FROM counter")[0][0] == 200


def test_a_failed_transaction_leaves_nothing(database) -> None:
    repo = ArtefactRepository(database)
    try:
        with database.transaction() as conn:
            conn.execute(
                "INSERT INTO artefacts (id, path, sha256, format, source, size_bytes) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ("x", "/x", "d" * 64, "gguf", "s", 1),
            )
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert repo.get("x") is None


def test_two_processes_do_not_lose_updates(database, tmp_path) -> None:
    import subprocess
    import sys

    with database.transaction() as conn:
        conn.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO counter (n) VALUES (0)")
    url = None if database.dialect == "sqlite" else database.url
    code = (
        "import sys\nfrom pathlib import Path\nfrom egide.store import open_database\n"
        "db = open_database(Path(sys.argv[1]), sys.argv[2] or None)\n"
        "for _ in range(100):\n"
        "    with db.transaction() as conn:\n"
        "        n = conn.execute('SELECT n FROM counter').fetchone()[0]\n"
        "        conn.execute('UPDATE counter SET n = ?', (n + 1,))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), url or ""]) for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert database.query("SELECT n FROM counter")[0][0] == 200
