"""``egide orgs | users | keys | quotas | usage``: the admin API of a running server."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from egide.cli.client import ApiError, ServerUnreachable, request_json, resolve_target

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def add_parsers(commands: Sub) -> None:
    orgs = _group(commands, "orgs", "manage the organisation tree")
    p = _command(orgs, "create", "create an organisation", orgs_create)
    p.add_argument("id", help="lowercase id, e.g. dga")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--parent", default=None, help="parent organisation id (none: a root)")
    p = _command(orgs, "list", "list the organisations you may see", orgs_list)
    p.add_argument("--org", default=None, help="only this organisation's subtree")

    users = _group(commands, "users", "manage users")
    p = _command(users, "create", "create a user", users_create)
    p.add_argument("username")
    p.add_argument("--org", required=True, help="the user's organisation id")
    p.add_argument("--nationality", default="FRA", help="ISO-3166 alpha-3 (default FRA)")
    p.add_argument("--clearance", required=True, help="a marking, e.g. 'S//ALPHA' or DR")
    p.add_argument("--role", action="append", dest="roles", help="repeatable (default user)")
    p.add_argument("--admin-scope", default=None, help="for an org-admin: the org administered")
    p = _command(users, "list", "list the users you may see", users_list)
    p.add_argument("--org", default=None, help="only this organisation's subtree")

    keys = _group(commands, "keys", "issue, list and revoke API keys")
    p = _command(keys, "create", "issue a key for a user (printed once)", keys_create)
    p.add_argument("user_id", help="the user's id (see users list)")
    p.add_argument("--name", default=None, help="a label, e.g. laptop")
    p.add_argument("--model", action="append", dest="models", help="limit to a model; repeatable")
    p.add_argument("--expires-in-days", type=int, default=None, help="default: never expires")
    p = _command(keys, "list", "list keys (prefixes only, never the keys)", keys_list)
    p.add_argument("--org", default=None, help="only keys of users in this subtree")
    p = _command(keys, "revoke", "revoke a key at once", keys_revoke)
    p.add_argument("key_id")

    quotas = _group(commands, "quotas", "set and read quotas")
    p = _command(quotas, "set", "set the limits of org:<id> or key:<id>", quotas_set)
    p.add_argument("subject", help="org:<id> or key:<id>")
    for limit in ("requests-per-min", "tokens-per-min", "tokens-per-day"):
        p.add_argument(f"--{limit}", type=int, default=None, help="unset when omitted")
    p = _command(quotas, "get", "show the limits of org:<id> or key:<id>", quotas_get)
    p.add_argument("subject", help="org:<id> or key:<id>")

    usage = commands.add_parser("usage", help="requests and tokens used, grouped")
    for name in ("org", "user", "model"):
        usage.add_argument(f"--{name}", default=None, help=f"only this {name}")
    usage.add_argument("--since", default=None, help="first day, YYYY-MM-DD")
    usage.add_argument("--until", default=None, help="last day, YYYY-MM-DD")
    usage.add_argument("--group-by", default="day,model", help="of day, org, user, key, model")
    _connection_args(usage)
    usage.set_defaults(run=_runner(usage_show))


def _group(commands: Sub, name: str, help: str) -> Sub:
    parser = commands.add_parser(name, help=help)
    sub: Sub = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    return sub


def _command(
    group: Sub, name: str, help: str, run: Callable[[argparse.Namespace], Any]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help)
    _connection_args(parser)
    parser.set_defaults(run=_runner(run))
    return parser


def _connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="server URL (default $EGIDE_URL or :8000)")
    parser.add_argument("--key", default=None, help="API key (default $EGIDE_API_KEY or admin.key)")


def _runner(run: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def go(args: argparse.Namespace) -> int:
        try:
            run(args)
        except ApiError as exc:
            Console(stderr=True).print(f"error {exc.status}: {exc}", markup=False)
            return 1
        except ServerUnreachable as exc:
            Console(stderr=True).print(f"error: no server reachable ({exc})", markup=False)
            return 1
        return 0

    return go


def _call(args: argparse.Namespace, method: str, path: str, **kw: Any) -> Any:
    return asyncio.run(request_json(resolve_target(args.url, args.key), method, path, **kw))


def _table(title: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        # Ids are copied into other commands: never cut them.
        table.add_column(column, no_wrap=column == "id", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


ORG_COLUMNS = ["id", "name", "parent"]
USER_COLUMNS = ["id", "username", "org_id", "nationality", "clearance", "roles", "admin_scope"]
KEY_COLUMNS = ["id", "prefix", "user_id", "name", "models", "expires_at", "revoked_at"]
QUOTA_COLUMNS = ["subject", "requests_per_min", "tokens_per_min", "tokens_per_day"]


def orgs_create(args: argparse.Namespace) -> None:
    body = {"id": args.id, "name": args.name, "parent": args.parent}
    _table("Organisation created", ORG_COLUMNS, [_call(args, "POST", "/v1/admin/orgs", body=body)])


def orgs_list(args: argparse.Namespace) -> None:
    rows = _call(args, "GET", "/v1/admin/orgs", params={"org": args.org})["data"]
    _table("Organisations", ORG_COLUMNS, rows)


def users_create(args: argparse.Namespace) -> None:
    body = {
        "username": args.username,
        "org": args.org,
        "nationality": args.nationality,
        "clearance": args.clearance,
        "roles": args.roles or ["user"],
        "admin_scope": args.admin_scope,
    }
    _table("User created", USER_COLUMNS, [_call(args, "POST", "/v1/admin/users", body=body)])


def users_list(args: argparse.Namespace) -> None:
    rows = _call(args, "GET", "/v1/admin/users", params={"org": args.org})["data"]
    _table("Users", USER_COLUMNS, rows)


def keys_create(args: argparse.Namespace) -> None:
    body = {
        "user_id": args.user_id,
        "name": args.name,
        "models": args.models,
        "expires_in_days": args.expires_in_days,
    }
    issued = _call(args, "POST", "/v1/admin/keys", body=body)
    _table("Key issued", KEY_COLUMNS, [issued])
    console = Console()
    console.print("The key (shown once; it cannot be recovered, store it now):")
    console.print(issued["key"], markup=False, soft_wrap=True)


def keys_list(args: argparse.Namespace) -> None:
    rows = _call(args, "GET", "/v1/admin/keys", params={"org": args.org})["data"]
    _table("API keys", KEY_COLUMNS, rows)


def keys_revoke(args: argparse.Namespace) -> None:
    row = _call(args, "DELETE", f"/v1/admin/keys/{args.key_id}")
    _table("Key revoked", KEY_COLUMNS, [row])


def quotas_set(args: argparse.Namespace) -> None:
    body = {
        "requests_per_min": args.requests_per_min,
        "tokens_per_min": args.tokens_per_min,
        "tokens_per_day": args.tokens_per_day,
    }
    row = _call(args, "PUT", f"/v1/admin/quotas/{args.subject}", body=body)
    _table("Quota set", QUOTA_COLUMNS, [row])


def quotas_get(args: argparse.Namespace) -> None:
    _table("Quota", QUOTA_COLUMNS, [_call(args, "GET", f"/v1/admin/quotas/{args.subject}")])


def usage_show(args: argparse.Namespace) -> None:
    params = {n: getattr(args, n) for n in ("org", "user", "model", "since", "until")}
    report = _call(args, "GET", "/v1/admin/usage", params={**params, "group_by": args.group_by})
    columns = [*report["group_by"], "requests", "prompt_tokens", "completion_tokens"]
    totals = {report["group_by"][0]: "total", **report["totals"]}
    _table("Usage", columns, [*report["data"], totals])
