"""``egide audit verify | export | public-key``: offline checks of the audit log."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from egide.audit.checkpoints import (
    KEY_FILE,
    load_or_create_signing_key,
    load_public_key,
    public_key_pem,
)
from egide.audit.verify import (
    export_connection,
    export_records,
    is_export,
    verify_connection,
    verify_database,
    verify_export,
)
from egide.config import load_settings


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = commands.add_parser("audit", help="verify, export and sign the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")

    verify = audit_sub.add_parser(
        "verify", help="check the hash chain and the signed checkpoints, offline"
    )
    verify.add_argument(
        "--input",
        default=None,
        help="a copy of the state database or a .jsonl export (default $EGIDE_HOME/egide.db)",
    )
    verify.add_argument(
        "--public-key",
        default=None,
        help="the audit public key, PEM (default: the key in $EGIDE_HOME)",
    )
    verify.add_argument("--config", default=None, help="egide.toml, to locate the state dir")
    verify.set_defaults(run=verify_command)

    export = audit_sub.add_parser("export", help="write the audit log as JSON Lines")
    export.add_argument("--output", default=None, help="file to write (default: stdout)")
    export.add_argument("--config", default=None, help="egide.toml, to locate the state dir")
    export.set_defaults(run=export_command)

    public = audit_sub.add_parser(
        "public-key", help="print the audit signing public key (created on first use)"
    )
    public.add_argument("--output", default=None, help="file to write (default: stdout)")
    public.add_argument("--config", default=None, help="egide.toml, to locate the state dir")
    public.set_defaults(run=public_key_command)


def _home(args: argparse.Namespace) -> Path:
    return load_settings(args.config).home


def verify_command(args: argparse.Namespace) -> int:
    home = _home(args)
    source = Path(args.input) if args.input else home / "egide.db"
    key_path = Path(args.public_key) if args.public_key else home / KEY_FILE
    try:
        public_key = load_public_key(key_path)
    except FileNotFoundError:
        print(
            f"error: no audit key at {key_path}; pass --public-key with the file that "
            "`egide audit public-key --output FILE` wrote on the server",
            file=sys.stderr,
        )
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = None if args.input else load_settings(args.config).database_url
    if url:  # the state lives in PostgreSQL
        import psycopg

        with psycopg.connect(url) as conn:
            report = verify_connection(conn, public_key)
        print(report.summary())
        return 0 if report.ok else 1
    if not source.is_file():
        print(f"error: nothing to verify at {source}; pass --input FILE", file=sys.stderr)
        return 2
    report = (
        verify_export(source, public_key)
        if is_export(source)
        else verify_database(source, public_key)
    )
    print(report.summary())
    return 0 if report.ok else 1


def export_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if settings.database_url:  # the state lives in PostgreSQL
        import psycopg

        with psycopg.connect(settings.database_url) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return _write_export(args, lambda out: export_connection(conn, out))
    db_path = settings.home / "egide.db"
    if not db_path.is_file():
        print(f"error: no state database at {db_path}; set EGIDE_HOME", file=sys.stderr)
        return 2
    return _write_export(args, lambda out: export_records(db_path, out))


def _write_export(args: argparse.Namespace, write: Callable[[IO[bytes]], int]) -> int:
    if args.output:
        with open(args.output, "wb") as handle:
            count = write(handle)
        print(f"exported {count} audit records to {args.output}", file=sys.stderr)
    else:
        write(sys.stdout.buffer)
        sys.stdout.flush()
    return 0


def public_key_command(args: argparse.Namespace) -> int:
    pem = public_key_pem(load_or_create_signing_key(_home(args)).public_key())
    if args.output:
        Path(args.output).write_bytes(pem)
        print(f"wrote the audit public key to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(pem.decode("ascii"))
    return 0
