"""The one seam between Égide and a model runtime.

A backend turns a validated request into OpenAI-shaped JSON objects. It knows nothing of
tenants, labels or the database: the gateway composes those around it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from egide.config import ModelConfig, Settings
from egide.errors import Unsupported
from egide.protocol.requests import ChatRequest, CompletionRequest
from egide.types import Capability

JSON = dict[str, Any]
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Embeddings:
    """Vectors for a list of texts, in order, with the tokens they cost."""

    vectors: list[list[float]]
    prompt_tokens: int


@dataclass
class Health:
    """What ``/health`` reports for one model."""

    ok: bool
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A model runtime. Subclasses register themselves with :func:`register`.

    ``chat`` is the one abstract method. Completions and embeddings are optional: a backend
    that has them lists them in ``capabilities`` and overrides the method.
    """

    kind: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})
    # Whether a fine-tuning job may take this backend's weights as its base (and its
    # adapter be served by the same backend).
    fine_tunable: ClassVar[bool] = False

    def __init__(self, model: ModelConfig, settings: Settings, artefact: Path | None) -> None:
        self.model = model
        self.settings = settings
        self.artefact = artefact

    @abstractmethod
    def chat(self, request: ChatRequest) -> AsyncIterator[JSON]:
        """Yield ``chat.completion.chunk`` objects if ``request.stream``, else one
        ``chat.completion`` object. Raise an :class:`egide.errors.EgideError` on failure."""

    def complete(self, request: CompletionRequest) -> AsyncIterator[JSON]:
        """Like :meth:`chat` for ``/v1/completions`` (``text_completion`` objects)."""
        raise Unsupported(
            f"model {self.model.id!r} does not serve /v1/completions; use /v1/chat/completions"
        )

    async def embed(self, texts: list[str], *, input_type: str = "query") -> Embeddings:
        """Embed ``texts`` in order. ``input_type`` is "query" (also for symmetric
        similarity) or "passage" (documents to be searched); engines without the
        distinction ignore it."""
        raise Unsupported(
            f"model {self.model.id!r} does not produce embeddings; "
            "use an embedding model listed by GET /v1/models"
        )

    def count_tokens(self, text: str, *, input_type: str = "passage") -> int:
        """Tokens of ``text`` as this model counts them for :meth:`embed` (what chunking
        budgets against). The default is an estimate; engines with a tokenizer override it."""
        return max(1, len(text) // 3)

    async def start(self, progress: Progress | None = None) -> None:  # noqa: B027
        """Load weights, open pools. Called once before the first request."""

    async def close(self) -> None:  # noqa: B027
        """Release everything :meth:`start` acquired."""

    def health(self) -> Health:
        return Health(ok=True)


_KINDS: dict[str, type[Backend]] = {}


def register(kind: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator: make a backend available under ``backend = "<kind>"`` in config."""

    def wrap(cls: type[Backend]) -> type[Backend]:
        cls.kind = kind
        _KINDS[kind] = cls
        return cls

    return wrap


def backend_class(kind: str) -> type[Backend]:
    try:
        return _KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(_KINDS))
        raise Unsupported(f"unknown backend kind {kind!r}; known kinds: {known}") from None
