"""Prepare, verify and record model artefacts.

A packaged model is assembled from its wheels into ``$EGIDE_HOME/models`` once, written
to a temporary name and renamed only after its digest matched, so a half-written or
tampered file is never loaded. Every start re-verifies the digest of what it loads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from egide.config import ModelConfig, Settings
from egide.errors import ArtefactRejected
from egide.registry.packaged import PackagedModel, packaged
from egide.store.artefacts import ArtefactRecord, ArtefactRepository
from egide.types import ArtefactFormat

Progress = Callable[[str, float], None]
_CHUNK = 8 * 1024 * 1024


def sniff_format(path: Path) -> ArtefactFormat:
    """GGUF or safetensors by their headers; anything else (pickle!) is refused."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if head[:4] == b"GGUF":
        return ArtefactFormat.GGUF
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return ArtefactFormat.SAFETENSORS
    raise ArtefactRejected(
        f"{path} is neither GGUF nor safetensors; Égide loads only those formats "
        "(convert the weights, e.g. with llama.cpp's convert scripts)"
    )


def sha256_file(path: Path, progress: Progress | None = None, label: str = "") -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size or 1
    done = 0
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(label, done / total)
    return digest.hexdigest()


def merged_id(model_id: str) -> str:
    """The artefact record of an adapted model's merged weights."""
    return f"{model_id}+merged"


class ArtefactRegistry:
    def __init__(self, settings: Settings, repo: ArtefactRepository) -> None:
        self.settings = settings
        self.repo = repo
        self.models_dir = settings.home / "models"

    def prepare(self, model: ModelConfig, progress: Progress | None = None) -> Path | None:
        """Return the verified artefact path for ``model`` (None for remote backends)."""
        if model.backend in ("openai", "fake") and not model.path:
            return None
        if not model.path:
            raise ArtefactRejected(
                f"model {model.id!r} (backend {model.backend}) needs a 'path' to its weights"
            )
        if model.path.startswith("package:"):
            base = self._prepare_packaged(
                model, packaged(model.path.removeprefix("package:")), progress
            )
        else:
            base = self._prepare_file(model, Path(model.path).expanduser(), progress)
        if model.lora:
            # The model's own artefact is its adapter: that is what its record names.
            self.adapter(model.id, Path(model.lora).expanduser(), model.lora_sha256, "file")
        if model.merged:
            self.adapter(merged_id(model.id), Path(model.merged).expanduser(), None, "file")
        return base

    def adapter(self, model_id: str, path: Path, sha256: str | None, source: str) -> str:
        """Verify a GGUF file made for a model — its LoRA adapter, or its base with that
        adapter merged — (format, and digest when pinned), record it as ``model_id``'s
        artefact, and return its sha256."""
        actual, fmt = self._verified(model_id, "adapter", path, sha256)
        if fmt is not ArtefactFormat.GGUF:
            raise ArtefactRejected(f"model {model_id!r}: {path} must be a GGUF file")
        self._record(model_id, path, actual, fmt, source)
        return actual

    def _prepare_file(self, model: ModelConfig, path: Path, progress: Progress | None) -> Path:
        actual, fmt = self._verified(model.id, "weights file", path, model.sha256, progress)
        self._record(model.id, path, actual, fmt, f"file:{path}")
        return path

    def _verified(
        self,
        model_id: str,
        what: str,
        path: Path,
        pinned: str | None,
        progress: Progress | None = None,
    ) -> tuple[str, ArtefactFormat]:
        """(sha256, format) of a file in a safe format whose digest matches ``pinned``."""
        if not path.is_file():
            raise ArtefactRejected(f"model {model_id!r}: {what} {path} does not exist")
        fmt = sniff_format(path)
        actual = sha256_file(path, progress, f"verifying {model_id}")
        if pinned and actual != pinned.lower():
            raise ArtefactRejected(
                f"model {model_id!r}: {path} has sha256 {actual}, not the pinned {pinned}; "
                "the file was altered or is not the one you meant, and will not be loaded"
            )
        return actual, fmt

    def _prepare_packaged(
        self, model: ModelConfig, spec: PackagedModel, progress: Progress | None
    ) -> Path:
        label = f"preparing {model.id}"
        target = self.models_dir / spec.filename if spec.assembled else spec.part_paths()[0]
        if spec.assembled and not target.exists():
            # _assemble verified the digest while writing; the file is renamed only then.
            actual = self._assemble(spec, target, progress, label)
        else:
            actual = sha256_file(target, progress, f"verifying {model.id}")
        if actual != spec.sha256:
            raise ArtefactRejected(
                f"model {model.id!r}: {target} has sha256 {actual}, not the pinned "
                f"{spec.sha256}; it was altered. Delete it and restart to re-assemble it "
                "from the installed packages"
            )
        if spec.format is not ArtefactFormat.PACKAGED:
            sniff_format(target)
        self._record(model.id, target, actual, spec.format, spec.source)
        return target

    def _assemble(
        self, spec: PackagedModel, target: Path, progress: Progress | None, label: str
    ) -> str:
        parts = spec.part_paths()
        total = sum(p.stat().st_size for p in parts) or 1
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        done = 0
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(label, done / total)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256:
            partial.unlink(missing_ok=True)
            raise ArtefactRejected(
                f"the installed packages {spec.source} assemble into sha256 "
                f"{digest.hexdigest()}, not the pinned {spec.sha256}; reinstall them"
            )
        os.replace(partial, target)
        return spec.sha256

    def _record(
        self, model_id: str, path: Path, sha: str, fmt: ArtefactFormat, source: str
    ) -> None:
        self.repo.put(
            ArtefactRecord(
                id=model_id,
                path=path,
                sha256=sha,
                format=fmt.value,
                source=source,
                size_bytes=path.stat().st_size,
            )
        )
