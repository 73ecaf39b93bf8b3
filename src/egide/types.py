"""Small shared value types with no dependencies on the rest of Égide."""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """What a model can do; declared in config and checked before a request reaches it."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    TOOLS = "tools"
    JSON_SCHEMA = "json_schema"
    STREAMING = "streaming"


class ArtefactFormat(StrEnum):
    """The only weight formats Égide will load (no pickle)."""

    GGUF = "gguf"
    SAFETENSORS = "safetensors"
    PACKAGED = "packaged"
