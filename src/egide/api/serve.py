"""``egide serve``: prepare the models (with a progress bar), then run the API."""

from __future__ import annotations

import argparse
import gc
import sys

import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from egide.api.app import create_app
from egide.config import load_settings
from egide.errors import EgideError
from egide.gateway import build_runtime


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("serve", help="run the API server on the embedded defaults")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default 8000)")
    parser.add_argument("--config", default=None, help="egide.toml (default: $EGIDE_CONFIG)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        settings = load_settings(args.config, host=args.host, port=args.port)
        with _progress(console) as progress:
            runtime = build_runtime(settings, progress)
    except EgideError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        return 2
    if runtime.new_admin_key:
        console.print(
            f"Admin API key (shown once; also saved to {settings.home / 'admin.key'}, mode 600):"
        )
        print(runtime.new_admin_key, flush=True)
    console.print(
        f"Égide serving on http://{settings.host}:{settings.port} (state: {settings.home})"
    )
    config = uvicorn.Config(
        create_app(settings, runtime, on_ready=_tune_gc),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
    return 0


def _tune_gc() -> None:
    """Long-lived objects (models, pools, routes) are frozen out of the collector, and
    young collections are made rarer: full collections of a large heap under load were
    the cause of 30-50 ms p99 spikes (measured with bench/gateway_overhead.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


class _progress:
    """A rich progress bar fed by ``(label, fraction)`` callbacks."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=console,
            transient=not sys.stderr.isatty(),
            disable=not sys.stderr.isatty(),
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def __call__(self, label: str, fraction: float) -> None:
        if label not in self.tasks:
            self.tasks[label] = self.bar.add_task(label, total=1.0)
            if self.bar.disable:  # not a terminal (a log file): one line per step
                self.bar.console.print(f"{label}...")
        self.bar.update(self.tasks[label], completed=fraction)
