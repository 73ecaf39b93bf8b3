"""The PEFT → GGUF LoRA converter: names, shapes and metadata llama.cpp expects, the
rotary row order of ``llama`` GGUFs, and refusals that leave no file behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egide.errors import ArtefactRejected
from egide.tuning.gguf_lora import base_info, convert, rope_permute
from support.llama_server import tiny_model_path


@pytest.fixture(scope="module")
def gemma(tmp_path_factory) -> Path:
    return tiny_model_path(tmp_path_factory.mktemp("tiny-model"))


def _adapter(where: Path, tensors: dict[str, np.ndarray], alpha: float = 16.0) -> Path:
    from safetensors.numpy import save_file

    where.mkdir(parents=True, exist_ok=True)
    (where / "adapter_config.json").write_text(json.dumps({"lora_alpha": alpha, "r": 4}))
    save_file(tensors, str(where / "adapter_model.safetensors"))
    return where


def _key(layer: int, module: str, side: str) -> str:
    part = "mlp" if module.endswith(("gate_proj", "up_proj", "down_proj")) else "self_attn"
    return f"base_model.model.model.layers.{layer}.{part}.{module}.lora_{side}.weight"


def test_rope_permute_undoes_what_transformers_does_on_load() -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    rows = np.arange(8)[:, None].astype(np.float32)
    assert rope_permute(rows, 1)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert rope_permute(rows, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    weights = np.random.default_rng(1).normal(size=(64, 5)).astype(np.float32)
    unpermute = LlamaTensorProcessor()._reverse_permute_weights
    for heads in (1, 2, 4, 8):
        assert np.array_equal(rope_permute(unpermute(weights, heads, heads), heads), weights)


def test_converts_every_projection_with_llama_cpp_names_and_metadata(gemma, tmp_path) -> None:
    import gguf

    arch, shapes, _ = base_info(gemma)
    rng = np.random.default_rng(0)
    tensors = {}
    for module, name in (("q_proj", "attn_q"), ("down_proj", "ffn_down")):
        n_in, n_out = shapes[f"blk.3.{name}.weight"]
        tensors[_key(3, module, "A")] = rng.normal(size=(4, n_in)).astype(np.float32)
        tensors[_key(3, module, "B")] = rng.normal(size=(n_out, 4)).astype(np.float32)
    out = convert(_adapter(tmp_path / "a", tensors), gemma, tmp_path / "lora.gguf")

    reader = gguf.GGUFReader(str(out))
    fields = {k: f.parts[f.data[0]] for k, f in reader.fields.items() if f.data}
    assert bytes(fields["general.architecture"]).decode() == arch == "gemma3"
    assert bytes(fields["general.type"]).decode() == "adapter"
    assert bytes(fields["adapter.type"]).decode() == "lora"
    assert float(fields["adapter.lora.alpha"][0]) == 16.0
    found = {t.name: t for t in reader.tensors}
    assert set(found) == {
        "blk.3.attn_q.weight.lora_a",
        "blk.3.attn_q.weight.lora_b",
        "blk.3.ffn_down.weight.lora_a",
        "blk.3.ffn_down.weight.lora_b",
    }
    a = found["blk.3.attn_q.weight.lora_a"]
    assert np.array_equal(np.asarray(a.data).reshape(4, -1), tensors[_key(3, "q_proj", "A")])
    b = found["blk.3.attn_q.weight.lora_b"]  # gemma3 is not permuted
    assert np.array_equal(np.asarray(b.data).reshape(-1, 4), tensors[_key(3, "q_proj", "B")])


def test_refuses_an_adapter_of_another_base_and_writes_nothing(gemma, tmp_path) -> None:
    tensors = {
        _key(0, "q_proj", "A"): np.zeros((4, 4096), np.float32),
        _key(0, "q_proj", "B"): np.zeros((4096, 4), np.float32),
    }
    with pytest.raises(ArtefactRejected, match="another base model"):
        convert(_adapter(tmp_path / "a", tensors), gemma, tmp_path / "lora.gguf")
    unknown = {"base_model.model.lm_head.lora_A.weight": np.zeros((4, 640), np.float32)}
    with pytest.raises(ArtefactRejected, match="known projection"):
        convert(_adapter(tmp_path / "b", unknown), gemma, tmp_path / "lora.gguf")
    beyond = {
        _key(99, "q_proj", "A"): np.zeros((4, 640), np.float32),
        _key(99, "q_proj", "B"): np.zeros((1024, 4), np.float32),
    }
    with pytest.raises(ArtefactRejected, match="no such tensor"):
        convert(_adapter(tmp_path / "c", beyond), gemma, tmp_path / "lora.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]
