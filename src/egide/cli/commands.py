"""``egide models list`` and ``egide chat``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console
from rich.table import Table

from egide.cli.client import ApiError, ServerUnreachable, Target, get_json, resolve_target
from egide.cli.client import stream_chat as http_stream_chat
from egide.config import DEFAULT_CHAT_MODEL, load_settings
from egide.errors import EgideError


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = commands.add_parser("models", help="inspect the models Égide serves")
    models_sub = models.add_subparsers(dest="models_command", metavar="COMMAND")
    listing = models_sub.add_parser("list", help="list the served models")
    _connection_args(listing)
    listing.set_defaults(run=models_list)

    chat = commands.add_parser("chat", help="ask a model a question; the answer streams")
    chat.add_argument("question", help="the question (use quotes)")
    chat.add_argument("--model", default=DEFAULT_CHAT_MODEL, help="model id (see models list)")
    chat.add_argument("--system", default=None, help="an optional system prompt")
    chat.add_argument("--max-tokens", type=int, default=512, help="answer length limit")
    chat.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature, 0 for the most likely answer (default: the model's)",
    )
    chat.add_argument("--seed", type=int, default=None, help="random seed, for repeatable answers")
    chat.add_argument(
        "--in-process",
        action="store_true",
        help="load the model in this process instead of using a running server",
    )
    _connection_args(chat)
    chat.set_defaults(run=chat_command)


def _connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="server URL (default $EGIDE_URL or :8000)")
    parser.add_argument("--key", default=None, help="API key (default $EGIDE_API_KEY or admin.key)")
    parser.add_argument("--config", default=None, help="egide.toml, for in-process use")


def models_list(args: argparse.Namespace) -> int:
    console = Console()
    target = resolve_target(args.url, args.key)
    try:
        rows = asyncio.run(get_json(target, "/v1/models"))["data"]
        source = target.url
    except ServerUnreachable:
        settings = load_settings(args.config)
        rows = [
            {
                "id": m.id,
                "owned_by": m.owned_by,
                "max_context_length": m.context_length,
                "backend": m.backend,
            }
            for m in settings.all_models()
        ]
        source = "configuration (no server running)"
    except ApiError as exc:
        console.print(f"[red]error {exc.status}:[/red] {exc}")
        return 1
    table = Table(title=f"Models ({source})")
    table.add_column("id")
    table.add_column("context", justify="right")
    table.add_column("owned by")
    for row in rows:
        table.add_row(row["id"], str(row.get("max_context_length", "")), row.get("owned_by", ""))
    console.print(table)
    return 0


def chat_command(args: argparse.Namespace) -> int:
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.question})
    payload = {
        "model": args.model,
        "messages": messages,
        "stream": True,
        "max_tokens": args.max_tokens,
    }
    if args.temperature is not None:
        payload["temperature"] = args.temperature
    if args.seed is not None:
        payload["seed"] = args.seed
    err = Console(stderr=True)
    try:
        asyncio.run(_print_stream(args, payload))
    except ApiError as exc:
        err.print(f"[red]error {exc.status}:[/red] {exc}")
        return 1
    except EgideError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        return 1
    return 0


async def _print_stream(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    target = resolve_target(args.url, args.key)
    chunks = (
        _in_process(args, payload) if args.in_process else _remote_or_local(args, target, payload)
    )
    async for chunk in chunks:
        for choice in chunk.get("choices", []):
            text = (choice.get("delta") or {}).get("content")
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
    sys.stdout.write("\n")


async def _remote_or_local(
    args: argparse.Namespace, target: Target, payload: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    try:
        async for chunk in http_stream_chat(target, payload):
            yield chunk
        return
    except ServerUnreachable:
        Console(stderr=True).print(f"[dim]no server at {target.url}; running in-process[/dim]")
    async for chunk in _in_process(args, payload):
        yield chunk


async def _in_process(
    args: argparse.Namespace, payload: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    from egide.gateway.local import local_chat

    settings = load_settings(args.config)
    async for chunk in local_chat(settings, payload):
        yield chunk
