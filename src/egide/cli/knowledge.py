"""``egide libraries | ingest | search``: knowledge bases of a running server."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from egide.cli.admin import _call, _command, _connection_args, _group, _runner, _table
from egide.cli.client import ApiError, Target, request_json, resolve_target, upload_file

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

SUFFIXES = frozenset({".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt", ".text"})
LIBRARY_COLUMNS = ["id", "name", "ceiling", "owner_org", "nb_documents", "total_size"]


def add_parsers(commands: Sub) -> None:
    libraries = _group(commands, "libraries", "create, list and delete knowledge libraries")
    p = _command(libraries, "create", "create a library", libraries_create)
    p.add_argument("name")
    p.add_argument("--description", default=None)
    p.add_argument("--ceiling", default=None, help="highest document label, e.g. 'S//TIGRE'")
    p.add_argument("--owner-org", default=None, help="owning organisation (default: yours)")
    p.add_argument("--read-org", default=None, help="subtree that may read (default: owner)")
    p.add_argument("--write-org", default=None, help="subtree that may write (default: owner)")
    p.add_argument(
        "--compartment", action="append", default=[], help="needed to read it; repeatable"
    )
    _command(libraries, "list", "list the libraries you may read or manage", libraries_list)
    p = _command(libraries, "delete", "delete a library and everything in it", libraries_delete)
    p.add_argument("library_id")

    ingest = commands.add_parser("ingest", help="upload a file or a folder into a library")
    ingest.add_argument("path", type=Path, help="a document or a folder (read recursively)")
    ingest.add_argument("--library", required=True, help="the library id")
    ingest.add_argument("--label", default=None, help="the documents' label, e.g. DR")
    ingest.add_argument("--no-wait", action="store_true", help="do not wait for indexing")
    _connection_args(ingest)
    ingest.set_defaults(run=_runner(ingest_run))

    search = commands.add_parser("search", help="search libraries (hybrid, under clearance)")
    search.add_argument("query")
    search.add_argument("--library", action="append", default=[], help="repeatable; default all")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "vector", "bm25"], default="hybrid")
    _connection_args(search)
    search.set_defaults(run=_runner(search_run))


def libraries_create(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"name": args.name, "description": args.description}
    if args.ceiling:
        body["ceiling"] = args.ceiling
    if args.owner_org:
        body["owner_org"] = args.owner_org
    for side, org in (("readers", args.read_org), ("writers", args.write_org)):
        if org or args.compartment:
            body[side] = {"org_id": org or args.owner_org, "compartments": args.compartment}
    _table("Library created", LIBRARY_COLUMNS, [_call(args, "POST", "/v1/libraries", body=body)])


def libraries_list(args: argparse.Namespace) -> None:
    _table("Libraries", LIBRARY_COLUMNS, _call(args, "GET", "/v1/libraries")["data"])


def libraries_delete(args: argparse.Namespace) -> None:
    _table(
        "Library deleted",
        LIBRARY_COLUMNS,
        [_call(args, "DELETE", f"/v1/libraries/{args.library_id}")],
    )


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ApiError(2, f"{path} is neither a file nor a folder")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def ingest_run(args: argparse.Namespace) -> None:
    files = _files(args.path)
    if not files:
        raise ApiError(2, f"no document to ingest in {args.path} ({', '.join(sorted(SUFFIXES))})")
    failed = asyncio.run(_ingest(resolve_target(args.url, args.key), args, files))
    if failed:
        raise ApiError(1, f"{failed} of {len(files)} document(s) failed (reasons above)")


async def _ingest(target: Target, args: argparse.Namespace, files: list[Path]) -> int:
    console = Console(stderr=True)
    base = f"/v1/libraries/{args.library}/documents"
    fields = {"label": args.label} if args.label else {}
    pending: dict[str, Path] = {}
    failed = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        sent = progress.add_task("uploaded", total=len(files))
        indexed = progress.add_task("indexed", total=len(files))
        for path in files:
            try:
                doc = await upload_file(target, base, path.name, path.read_bytes(), fields)
                pending[doc["id"]] = path
            except ApiError as exc:
                failed += 1
                progress.advance(indexed)
                console.print(f"[red]refused[/red] {path}: {exc}", highlight=False)
            progress.advance(sent)
        while pending and not args.no_wait:
            for doc_id, path in list(pending.items()):
                status = await request_json(target, "GET", f"{base}/{doc_id}/status")
                if status["process_status"] in ("done", "error"):
                    del pending[doc_id]
                    progress.advance(indexed)
                    if status["process_status"] == "error":
                        failed += 1
                        console.print(f"[red]failed[/red] {path}: {status['error']}")
            if pending:
                await asyncio.sleep(0.5)
        if args.no_wait:
            progress.update(indexed, completed=len(files))
    console.print(f"{len(files) - failed} document(s) ingested, {failed} failed")
    return failed


def search_run(args: argparse.Namespace) -> None:
    body = {"query": args.query, "library_ids": args.library, "top_k": args.top_k}
    started = time.perf_counter()
    result = _call(args, "POST", "/v1/search", body={**body, "mode": args.mode})
    rows = [
        {**r, "where": f"{r['document_name']} p.{r['page'] or '-'}", "text": r["text"][:160]}
        for r in result["data"]
    ]
    _table(
        f"{len(rows)} result(s), label {result['label']} "
        f"({(time.perf_counter() - started) * 1000:.0f} ms)",
        ["where", "label", "score", "text"],
        rows,
    )
