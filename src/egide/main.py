"""The ``egide`` command: one parser, sub-commands contributed by the entry points."""

from __future__ import annotations

import argparse
import sys

from egide import __version__, offline


def build_parser() -> argparse.ArgumentParser:
    from egide.api import serve
    from egide.cli import admin, audit, commands, knowledge

    parser = argparse.ArgumentParser(
        prog="egide",
        description="Égide: a sovereign OpenAI- and Mistral-compatible AI platform.",
    )
    parser.add_argument("--version", action="version", version=f"egide {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(sub)
    commands.add_parsers(sub)
    audit.add_parsers(sub)
    admin.add_parsers(sub)
    knowledge.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    offline.apply()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
