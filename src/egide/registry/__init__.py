"""Model registry: every artefact pinned by sha256, safe formats only, provenance kept."""

from egide.registry.artefacts import ArtefactRegistry

__all__ = ["ArtefactRegistry"]
