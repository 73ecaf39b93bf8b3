"""``/v1/admin/...``: organisations, users, keys, quotas and usage. Thin handlers: parse,
call one :class:`~egide.tenancy.admin.Administration` method, serialise."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from egide.api.admin_bodies import KeyCreate, OrgCreate, QuotaLimits, UserCreate
from egide.api.body import read_json
from egide.api.routes import endpoint, request_id
from egide.gateway import Runtime
from egide.store.keys import KeyRecord
from egide.store.orgs import Org
from egide.store.quotas import Quota
from egide.store.users import UserRecord
from egide.tenancy import Caller
from egide.tenancy.admin import Administration
from egide.tenancy.scope import Repositories


def _admin(request: Request) -> tuple[Administration, Caller, Runtime]:
    """The administration (built once per runtime) and the authenticated caller."""
    runtime: Runtime = request.app.state.runtime
    state = request.app.state
    admin: Administration | None = getattr(state, "administration", None)
    if admin is None or getattr(state, "administration_of", None) is not runtime:
        admin = Administration(
            Repositories.on(runtime.db),
            runtime.audit,
            scheme=runtime.scheme,
            ceiling=runtime.ceiling,
            models=runtime.gateway.backends.keys(),
        )
        state.administration, state.administration_of = admin, runtime
    return (
        admin,
        runtime.auth.authenticate(request.headers.get("authorization"), request_id(request)),
        runtime,
    )


async def _body(request: Request, runtime: Runtime) -> dict[str, Any]:
    return await read_json(request, runtime.settings.max_body_bytes)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def _org(org: Org) -> dict[str, Any]:
    return {"object": "organisation", "id": org.id, "name": org.name, "parent": org.parent_id}


def _user(user: UserRecord) -> dict[str, Any]:
    return {"object": "user", **dataclasses.asdict(user), "roles": list(user.roles)}


def _key(key: KeyRecord) -> dict[str, Any]:
    data = dataclasses.asdict(key)
    data["models"] = sorted(key.models) if key.models is not None else None
    return {"object": "api_key", **data}


def _quota(quota: Quota) -> dict[str, Any]:
    return {"object": "quota", **dataclasses.asdict(quota)}


def _list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items}


@endpoint
async def create_org(request: Request) -> Response:
    admin, caller, runtime = _admin(request)
    body = OrgCreate.model_validate(await _body(request, runtime))
    return _json(_org(admin.create_org(caller, body.id, body.name, body.parent)), 201)


@endpoint
async def list_orgs(request: Request) -> Response:
    admin, caller, _ = _admin(request)
    orgs = admin.list_orgs(caller, request.query_params.get("org") or None)
    return _json(_list([_org(o) for o in orgs]))


@endpoint
async def create_user(request: Request) -> Response:
    admin, caller, runtime = _admin(request)
    b = UserCreate.model_validate(await _body(request, runtime))
    user = admin.create_user(
        caller, b.username, b.org, b.nationality, b.clearance, b.roles, b.admin_scope
    )
    return _json(_user(user), 201)


@endpoint
async def list_users(request: Request) -> Response:
    admin, caller, _ = _admin(request)
    users = admin.list_users(caller, request.query_params.get("org") or None)
    return _json(_list([_user(u) for u in users]))


@endpoint
async def create_key(request: Request) -> Response:
    admin, caller, runtime = _admin(request)
    b = KeyCreate.model_validate(await _body(request, runtime))
    issued = admin.create_key(
        caller, b.user_id, b.name, b.models, b.expires_in_days, expires_at=b.expires_at
    )
    return _json({**_key(issued.record), "key": issued.key}, 201)


@endpoint
async def list_keys(request: Request) -> Response:
    admin, caller, _ = _admin(request)
    keys = admin.list_keys(caller, request.query_params.get("org") or None)
    return _json(_list([_key(k) for k in keys]))


@endpoint
async def revoke_key(request: Request) -> Response:
    admin, caller, _ = _admin(request)
    return _json(_key(admin.revoke_key(caller, request.path_params["key_id"])))


@endpoint
async def set_quota(request: Request) -> Response:
    admin, caller, runtime = _admin(request)
    limits = QuotaLimits.model_validate(await _body(request, runtime))
    quota = admin.set_quota(caller, request.path_params["subject"], limits.model_dump())
    return _json(_quota(quota))


@endpoint
async def get_quota(request: Request) -> Response:
    admin, caller, _ = _admin(request)
    return _json(_quota(admin.get_quota(caller, request.path_params["subject"])))


@endpoint
async def usage(request: Request) -> Response:
    admin, caller, _ = _admin(request)
    q = request.query_params
    filters = {name: q.get(name) or None for name in ("org", "user", "model", "since", "until")}
    group_by = [g for g in q.get("group_by", "day,model").split(",") if g.strip()]
    return _json(admin.usage(caller, group_by=group_by, **filters))


ROUTES: list[Route] = [
    Route("/v1/admin/orgs", create_org, methods=["POST"]),
    Route("/v1/admin/orgs", list_orgs, methods=["GET"]),
    Route("/v1/admin/users", create_user, methods=["POST"]),
    Route("/v1/admin/users", list_users, methods=["GET"]),
    Route("/v1/admin/keys", create_key, methods=["POST"]),
    Route("/v1/admin/keys", list_keys, methods=["GET"]),
    Route("/v1/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
    Route("/v1/admin/quotas/{subject}", set_quota, methods=["PUT"]),
    Route("/v1/admin/quotas/{subject}", get_quota, methods=["GET"]),
    Route("/v1/admin/usage", usage, methods=["GET"]),
]
