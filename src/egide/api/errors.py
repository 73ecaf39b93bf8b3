"""The one table that maps domain errors to HTTP statuses and the OpenAI error envelope."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from egide import errors as e
from egide.protocol.invalid import invalid_request

# error class → (HTTP status, envelope type, envelope code); first match wins (MRO order).
TABLE: list[tuple[type[e.EgideError], int, str, str | None]] = [
    (e.MalformedJSON, 400, "invalid_request_error", "invalid_json"),
    (e.PayloadTooLarge, 413, "invalid_request_error", "payload_too_large"),
    (e.ContextOverflow, 400, "invalid_request_error", "context_length_exceeded"),
    (e.SpillageRefused, 422, "invalid_request_error", "spillage_refused"),
    (e.DocumentTooLarge, 413, "invalid_request_error", "document_too_large"),
    (e.UnsupportedDocument, 415, "invalid_request_error", "unsupported_document"),
    (e.EncryptedDocument, 422, "invalid_request_error", "encrypted_document"),
    (e.MalformedDocument, 422, "invalid_request_error", "malformed_document"),
    (e.InvalidRequest, 400, "invalid_request_error", None),
    (e.AuthenticationFailed, 401, "authentication_error", "invalid_api_key"),
    (e.PermissionDenied, 403, "permission_error", "permission_denied"),
    (e.QuotaExceeded, 429, "rate_limit_error", "quota_exceeded"),
    (e.ModelNotFound, 404, "invalid_request_error", "model_not_found"),
    (e.NotFound, 404, "invalid_request_error", "not_found"),
    (e.Conflict, 409, "invalid_request_error", "conflict"),
    (e.Unsupported, 400, "invalid_request_error", "unsupported"),
    (e.Overloaded, 503, "server_overloaded", "overloaded"),
    (e.UpstreamError, 502, "upstream_error", "upstream_unavailable"),
    (e.ArtefactRejected, 500, "server_error", "artefact_rejected"),
    (e.EngineError, 500, "server_error", "engine_error"),
    (e.ConfigError, 500, "server_error", "config_error"),
    (e.EgideError, 500, "server_error", None),
]


def describe(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, envelope, extra headers) for any exception."""
    if isinstance(exc, ValidationError):
        exc = invalid_request(exc)
    if isinstance(exc, e.EgideError):
        for cls, status, kind, code in TABLE:
            if isinstance(exc, cls):
                headers = {}
                if isinstance(exc, e.Overloaded | e.QuotaExceeded):
                    headers["Retry-After"] = str(exc.retry_after)
                if isinstance(exc, e.AuthenticationFailed):
                    headers["WWW-Authenticate"] = "Bearer"
                return status, envelope(exc.message, kind, exc.param, code), headers
    return (
        500,
        envelope("internal error; the server log has the details", "server_error", None, None),
        {},
    )


def envelope(message: str, kind: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(exc: BaseException) -> Response:
    status, body, headers = describe(exc)
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def in_band(exc: BaseException) -> dict[str, Any]:
    """The envelope sent as an SSE event when a stream fails after it started."""
    return describe(exc)[1]
