"""Domain errors. They carry no HTTP status: ``egide.api.errors`` maps them.

Every message says what went wrong *and* how to fix it.
"""

from __future__ import annotations


class EgideError(Exception):
    """Base of every error Égide raises on purpose."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(EgideError):
    """The request is malformed or has a wrong value."""


class MalformedJSON(InvalidRequest):
    """The body is not valid JSON."""


class PayloadTooLarge(InvalidRequest):
    """The body is larger than the configured limit."""


class ContextOverflow(InvalidRequest):
    """The prompt (plus the requested completion) does not fit the model's context."""


class AuthenticationFailed(EgideError):
    """No key, or a key that matches nothing."""


class SpillageRefused(InvalidRequest):
    """The input carries a marking above the request's working label."""


class PermissionDenied(EgideError):
    """The policy engine refused the action; the message is the decision's reason."""


class QuotaExceeded(EgideError):
    """A request, token or daily budget is used up."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(EgideError):
    """A named thing does not exist."""


class ModelNotFound(NotFound):
    """The requested model id is not served here."""


class Unsupported(EgideError):
    """The model or backend lacks the capability the request needs."""


class Overloaded(EgideError):
    """The engine's queue is full; the caller should retry later."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(EgideError):
    """Every deployment of a model failed or is unreachable."""


class ConfigError(EgideError):
    """The configuration file or environment is wrong."""


class ArtefactRejected(EgideError):
    """A model artefact failed verification (digest, format) and will not be loaded."""


class EngineError(EgideError):
    """The model runtime failed while serving a valid request."""


class MarkingError(InvalidRequest):
    """A classification marking could not be understood (or a label value is malformed)."""


class PolicyError(EgideError):
    """A security value is inconsistent (e.g. labels from two different level schemes)."""


class DocumentError(InvalidRequest):
    """An uploaded document cannot be ingested; the message says why and what to do."""


class UnsupportedDocument(DocumentError):
    """The file's format is not one Égide parses (PDF, DOCX, HTML, Markdown, text)."""


class MalformedDocument(DocumentError):
    """The file claims a supported format but cannot be read."""


class EncryptedDocument(DocumentError):
    """The file is password-protected; it must be uploaded decrypted."""


class DocumentTooLarge(DocumentError):
    """The file (bytes, pages or extracted text) is above the configured limits."""


class Conflict(EgideError):
    """The request clashes with the current state (e.g. a name already taken)."""
