"""Schema migrations, applied in order. Never edit a released one: append.

A migration is one SQL script in the subset common to SQLite and PostgreSQL, or a dict
with one script per dialect ("sqlite", "postgres") where they must differ.
"""

Migration = str | dict[str, str]

_NOW = {
    "sqlite": "(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
    "postgres": "(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))",
}

_V1 = """
    CREATE TABLE artefacts (
        id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        format TEXT NOT NULL,
        source TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        registered_at TEXT NOT NULL DEFAULT {now}
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        prefix TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT {now},
        revoked_at TEXT
    )
"""

MIGRATIONS: list[Migration] = [
    {dialect: _V1.format(now=now) for dialect, now in _NOW.items()},
    {
        dialect: f"""
    CREATE TABLE audit_records (
        seq {seq} PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE audit_checkpoints (
        seq {seq} PRIMARY KEY,
        payload TEXT NOT NULL
    )
    """
        # SQLite: exactly INTEGER PRIMARY KEY makes seq the rowid (no separate index).
        for dialect, seq in {"sqlite": "INTEGER", "postgres": "BIGINT"}.items()
    },
]
