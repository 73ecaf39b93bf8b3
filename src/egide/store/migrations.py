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

_V3_TENANCY = """
    CREATE TABLE orgs (
        id TEXT PRIMARY KEY,
        parent_id TEXT REFERENCES orgs(id),
        name TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL DEFAULT {now}
    );
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        org_id TEXT NOT NULL REFERENCES orgs(id),
        nationality TEXT NOT NULL,
        clearance TEXT NOT NULL,
        roles TEXT NOT NULL,
        admin_scope TEXT REFERENCES orgs(id),
        created_at TEXT NOT NULL DEFAULT {now},
        disabled_at TEXT
    );
    ALTER TABLE api_keys ADD COLUMN user_id TEXT REFERENCES users(id);
    ALTER TABLE api_keys ADD COLUMN name TEXT;
    ALTER TABLE api_keys ADD COLUMN models TEXT;
    ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
    CREATE TABLE quotas (
        subject TEXT PRIMARY KEY,
        requests_per_min BIGINT,
        tokens_per_min BIGINT,
        tokens_per_day BIGINT
    );
    CREATE TABLE quota_counters (
        subject TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        span TEXT NOT NULL,
        requests BIGINT NOT NULL,
        tokens BIGINT NOT NULL,
        PRIMARY KEY (subject, span, window_start)
    );
    CREATE TABLE usage (
        day TEXT NOT NULL,
        org_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        model TEXT NOT NULL,
        requests BIGINT NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        PRIMARY KEY (day, org_id, user_id, key_id, model)
    )
"""
MIGRATIONS.append({dialect: _V3_TENANCY.format(now=now) for dialect, now in _NOW.items()})

_V4_KNOWLEDGE = """
    CREATE TABLE libraries (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT,
        owner_org TEXT REFERENCES orgs(id),
        created_by TEXT NOT NULL,
        ceiling TEXT NOT NULL,
        read_org TEXT REFERENCES orgs(id),
        read_compartments TEXT NOT NULL,
        write_org TEXT REFERENCES orgs(id),
        write_compartments TEXT NOT NULL,
        chunk_size INTEGER,
        created_at TEXT NOT NULL DEFAULT {now},
        updated_at TEXT NOT NULL DEFAULT {now}
    );
    CREATE TABLE documents (
        id TEXT PRIMARY KEY,
        library_id TEXT NOT NULL REFERENCES libraries(id),
        name TEXT NOT NULL,
        mime_type TEXT NOT NULL,
        extension TEXT,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        label TEXT NOT NULL,
        pages INTEGER,
        uploaded_by TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        chunks_total INTEGER NOT NULL,
        chunks_done INTEGER NOT NULL,
        tokens BIGINT NOT NULL,
        lease_until BIGINT NOT NULL,
        attributes TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT {now},
        processed_at TEXT
    );
    CREATE INDEX documents_library ON documents (library_id, created_at);
    CREATE TABLE chunks (
        id {serial} PRIMARY KEY,
        document_id TEXT NOT NULL REFERENCES documents(id),
        library_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        label TEXT NOT NULL,
        page INTEGER,
        headings TEXT NOT NULL,
        text TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        vector {blob}
    );
    CREATE INDEX chunks_document ON chunks (document_id, position);
    CREATE TABLE knowledge_changes (
        seq {serial} PRIMARY KEY,
        library_id TEXT NOT NULL,
        document_id TEXT,
        kind TEXT NOT NULL
    )
"""
MIGRATIONS.append(
    {
        dialect: _V4_KNOWLEDGE.format(now=now, serial=serial, blob=blob)
        for dialect, now, serial, blob in (
            ("sqlite", _NOW["sqlite"], "INTEGER", "BLOB"),
            ("postgres", _NOW["postgres"], "BIGSERIAL", "BYTEA"),
        )
    }
)

_V5_FILES = """
    CREATE TABLE files (
        id TEXT PRIMARY KEY,
        filename TEXT NOT NULL,
        purpose TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        label TEXT NOT NULL,
        owner_org TEXT REFERENCES orgs(id),
        uploaded_by TEXT NOT NULL,
        num_lines INTEGER,
        created_at BIGINT NOT NULL
    )
"""
MIGRATIONS.append(_V5_FILES)

_V6_JOBS = """
    CREATE TABLE tuning_jobs (
        id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        suffix TEXT,
        status TEXT NOT NULL,
        auto_start INTEGER NOT NULL,
        owner_org TEXT REFERENCES orgs(id),
        created_by TEXT NOT NULL,
        label TEXT NOT NULL,
        training_files TEXT NOT NULL,
        validation_files TEXT NOT NULL,
        hyperparameters TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        modified_at BIGINT NOT NULL,
        fine_tuned_model TEXT,
        trained_tokens BIGINT,
        error TEXT,
        metrics TEXT NOT NULL,
        lease_until BIGINT NOT NULL
    );
    CREATE TABLE tuning_events (
        job_id TEXT NOT NULL REFERENCES tuning_jobs(id),
        seq INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    )
"""
MIGRATIONS.append(_V6_JOBS)
