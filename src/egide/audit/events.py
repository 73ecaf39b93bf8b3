"""Typed audit events: frozen dataclasses with stable kebab-case names.

Every event carries the common fields (timestamp, actor, org path, request id) and its own
fields. Content never enters the chain: an inference is recorded with digests of the prompt
and the response, a failed authentication with the key's public prefix only.

:func:`canonical` gives the bytes that get hashed: ``orjson`` with sorted keys and no
whitespace. Changing a field of a released event is a format change: add a new event.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Literal

import orjson

KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
KEY_PREFIX_MAX = 12
ADMIN_KINDS = ("key", "user", "org", "quota", "config")
AdminKind = Literal["key", "user", "org", "quota", "config"]


def utc_now() -> str:
    """UTC ISO-8601 with microseconds, e.g. ``2025-01-31T09:15:02.123456Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Fields common to every audit event."""

    name: ClassVar[str] = ""

    actor: str = "anonymous"
    """Principal id, or ``anonymous`` before authentication."""
    org_path: str = ""
    """Organisation path of the actor, e.g. ``ministry/dga/unit-12``."""
    request_id: str = ""
    """The request this event belongs to (empty for events outside a request)."""
    timestamp: str = field(default_factory=utc_now)
    """UTC ISO-8601 with microseconds."""


@dataclass(frozen=True, kw_only=True)
class AuthSucceeded(Event):
    """A caller authenticated; ``actor`` is the principal it became."""

    name: ClassVar[str] = "auth-succeeded"
    method: str = "api-key"


@dataclass(frozen=True, kw_only=True)
class AuthFailed(Event):
    """Authentication was refused. Only the key's public prefix is kept, never the key."""

    name: ClassVar[str] = "auth-failed"
    reason: str
    key_prefix: str = ""

    def __post_init__(self) -> None:
        if len(self.key_prefix) > KEY_PREFIX_MAX:
            raise ValueError(
                f"key_prefix has {len(self.key_prefix)} characters; pass at most "
                f"{KEY_PREFIX_MAX} (the public prefix), never the whole key"
            )


@dataclass(frozen=True, kw_only=True)
class Decision(Event):
    """The policy engine allowed or refused an action on a resource, with its reason."""

    name: ClassVar[str] = "decision"
    action: str
    resource: str
    allowed: bool
    reason: str


@dataclass(frozen=True, kw_only=True)
class Inference(Event):
    """A model answered. Digests of the prompt and the response only, never their text."""

    name: ClassVar[str] = "inference"
    model: str
    label: str
    prompt_tokens: int
    completion_tokens: int
    prompt_sha256: str
    response_sha256: str

    def __post_init__(self) -> None:
        for attr in ("prompt_sha256", "response_sha256"):
            if not _SHA256.match(getattr(self, attr)):
                raise ValueError(
                    f"{attr} must be a lowercase hex SHA-256 digest (64 characters); "
                    "hash the text with hashlib.sha256(...).hexdigest(), never pass the text"
                )


@dataclass(frozen=True, kw_only=True)
class AdminChange(Event):
    """An administrator changed a key, user, organisation, quota or the configuration."""

    name: ClassVar[str] = "admin-change"
    kind: AdminKind
    target: str
    summary: str

    def __post_init__(self) -> None:
        if self.kind not in ADMIN_KINDS:
            raise ValueError(f"kind {self.kind!r} must be one of {', '.join(ADMIN_KINDS)}")


@dataclass(frozen=True, kw_only=True)
class SpillageRefused(Event):
    """A request or answer carried a marking above what the caller may see; it was refused."""

    name: ClassVar[str] = "spillage-refused"
    direction: Literal["input", "output"]
    level: str
    position: int


@dataclass(frozen=True, kw_only=True)
class SpillageWithheld(Event):
    """Part of an answer carried a marking above the caller's clearance and was withheld."""

    name: ClassVar[str] = "spillage-withheld"
    level: str
    position: int


KnowledgeKind = Literal[
    "library-created",
    "library-updated",
    "library-deleted",
    "document-added",
    "document-indexed",
    "document-failed",
    "document-deleted",
    "document-relabelled",
]


@dataclass(frozen=True, kw_only=True)
class KnowledgeChange(Event):
    """A library or one of its documents was created, changed, indexed or deleted. Names and
    labels only: a document's content never enters the chain (``sha256`` identifies it)."""

    name: ClassVar[str] = "knowledge-change"
    kind: KnowledgeKind
    library: str
    document: str = ""
    label: str = ""
    sha256: str = ""
    summary: str = ""


@dataclass(frozen=True, kw_only=True)
class Retrieval(Event):
    """A search or a grounded answer read chunks: which ones, from which libraries, and the
    label of what was read. The query is kept as a digest."""

    name: ClassVar[str] = "retrieval"
    libraries: str
    query_sha256: str
    chunks: str
    label: str

    def __post_init__(self) -> None:
        if not _SHA256.match(self.query_sha256):
            raise ValueError("query_sha256 must be a lowercase hex SHA-256 digest of the query")


TuningKind = Literal[
    "file-uploaded",
    "file-deleted",
    "job-created",
    "job-transition",
    "model-registered",
    "model-deleted",
]


@dataclass(frozen=True, kw_only=True)
class TuningChange(Event):
    """A training file, a fine-tuning job or a fine-tuned model changed: uploads and
    deletions, every job transition (``summary`` says from which state to which), models
    registered. Names, labels and digests only."""

    name: ClassVar[str] = "tuning-change"
    kind: TuningKind
    target: str
    label: str = ""
    sha256: str = ""
    summary: str = ""


EVENT_TYPES: tuple[type[Event], ...] = (
    AuthSucceeded,
    AuthFailed,
    Decision,
    Inference,
    AdminChange,
    SpillageRefused,
    SpillageWithheld,
    KnowledgeChange,
    Retrieval,
    TuningChange,
)
REGISTRY: dict[str, type[Event]] = {cls.name: cls for cls in EVENT_TYPES}


def canonical(event: Event) -> bytes:
    """The bytes that get hashed: sorted keys, no whitespace, UTF-8.

    (orjson keeps a dataclass's field order even with OPT_SORT_KEYS, hence the dict.)
    """
    names = _FIELD_NAMES.get(type(event))
    if names is None:
        names = _FIELD_NAMES[type(event)] = tuple(f.name for f in dataclasses.fields(event))
    return orjson.dumps({n: getattr(event, n) for n in names}, option=orjson.OPT_SORT_KEYS)


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def decode(name: str, payload: bytes) -> Event:
    """Rebuild a typed event from a stored record (for readers; verification needs no types)."""
    cls = REGISTRY[name]
    data = orjson.loads(payload)
    return cls(**data)


def is_documented(cls: type[Event]) -> bool:
    """True when the class has its own docstring (dataclass invents one otherwise)."""
    doc = cls.__dict__.get("__doc__") or ""
    return bool(doc) and not doc.startswith(f"{cls.__name__}(")


def events_reference() -> str:
    """Markdown reference of every audit event, generated from the code."""
    lines = [
        "# Audit events",
        "",
        "Every record's payload is the event serialised with sorted keys and no whitespace.",
        "Common fields: `actor`, `org_path`, `request_id`, `timestamp`.",
        "",
    ]
    for cls in EVENT_TYPES:
        doc = (cls.__doc__ or "").strip()
        own = [f for f in dataclasses.fields(cls) if f.name not in _COMMON]
        lines += [f"## `{cls.name}`", "", doc, ""]
        if own:
            lines += ["| field | type |", "|---|---|"]
            lines += [f"| `{f.name}` | `{f.type}` |" for f in own]
            lines.append("")
    lines += [
        "## `checkpoint`",
        "",
        "Written by the audit log itself every N records and on clean shutdown: an Ed25519",
        "signature over the sequence number and hash of the record just before it.",
        "",
    ]
    return "\n".join(lines)


_COMMON = frozenset(f.name for f in dataclasses.fields(Event))
