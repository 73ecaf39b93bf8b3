"""A request body that fails validation becomes one clear InvalidRequest (API and CLI)."""

from __future__ import annotations

from pydantic import ValidationError

from egide.errors import InvalidRequest


def _message(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        problems.append(f"{where or 'body'}: {err['msg']}")
    more = len(exc.errors()) - 5
    tail = f" (and {more} more)" if more > 0 else ""
    return "invalid request: " + "; ".join(problems) + tail + ". Fix these fields and retry."


def _first_param(exc: ValidationError) -> str | None:
    errors = exc.errors()
    if not errors:
        return None
    return ".".join(str(p) for p in errors[0]["loc"]) or None


def invalid_request(exc: ValidationError) -> InvalidRequest:
    return InvalidRequest(_message(exc), param=_first_param(exc))
