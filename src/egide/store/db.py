"""The state database: SQLite (WAL) on one machine, PostgreSQL when several gateway
processes share state (``database_url`` in the configuration).

Repositories write SQL once, with ``?`` placeholders and the common subset of both
dialects; :class:`PostgresDatabase` translates the placeholders. A migration that cannot
be written in the common subset gives one text per dialect.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from egide.errors import ConfigError
from egide.store.migrations import MIGRATIONS, Migration


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ...) -> Cursor: ...


class Database(ABC):
    """What repositories use: transactions, queries and migrations."""

    dialect: str

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction that holds the database's write lock until it ends."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Rows (readable by column name and by index) of one statement."""

    @abstractmethod
    def close(self) -> None: ...

    def migrate(self) -> int:
        """Apply pending migrations in one transaction; return the schema version."""
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            for version, migration in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in _script(migration, self.dialect).split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        return len(MIGRATIONS)


def in_list(values: Sequence[object]) -> str:
    """The placeholders of an ``IN (...)`` list: "?,?,?" (callers handle an empty list)."""
    return ",".join("?" * len(values))


def _script(migration: Migration, dialect: str) -> str:
    return migration if isinstance(migration, str) else migration[dialect]


class SqliteDatabase(Database):
    """One connection, writes serialised by a lock (SQLite has one writer anyway)."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Row(tuple):  # type: ignore[type-arg]
    """A PostgreSQL row readable like :class:`sqlite3.Row`: by index and by name."""

    _names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self._names


def _row_factory(cursor: Any) -> Any:
    names = tuple(c.name for c in cursor.description or ())
    row_type = type("Row", (Row,), {"_names": names})
    return lambda values: row_type(values)


class _PgConnection:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        cursor: Cursor = self._conn.execute(*_pg(sql, params))
        return cursor


_WRITE_LOCK = 0x45474944  # "EGID": the advisory lock every write transaction holds


class PostgresDatabase(Database):
    """One connection per process, serialised by a lock. Every write transaction first
    takes one transaction-scoped advisory lock, the equivalent of SQLite's
    ``BEGIN IMMEDIATE``: read-modify-write sequences (quotas, the audit chain head) stay
    correct across gateway processes."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        try:
            self._conn = psycopg.connect(url, autocommit=True, row_factory=_row_factory)
        except psycopg.OperationalError as exc:
            raise ConfigError(
                f"cannot connect to the database at {_redact(url)}: {exc}; check "
                "database_url in egide.toml and that PostgreSQL is running"
            ) from exc
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            yield _PgConnection(self._conn)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            rows: list[Any] = self._conn.execute(*_pg(sql, params)).fetchall()
            return rows

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _pg(sql: str, params: Sequence[object]) -> tuple[Any, ...]:
    """``?`` placeholders to psycopg's ``%s`` (and literal ``%`` escaped) when there are
    parameters; the statement untouched when there are none."""
    if not params:
        return (sql,)
    return (sql.replace("%", "%%").replace("?", "%s"), tuple(params))


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def open_database(home: Path, url: str | None = None) -> Database:
    """The state database: PostgreSQL at ``url`` when given, else ``home/egide.db``."""
    if url:
        db: Database = PostgresDatabase(url)
    else:
        home.mkdir(parents=True, exist_ok=True)
        db = SqliteDatabase(home / "egide.db")
    db.migrate()
    return db
