"""Merging a GGUF LoRA into its base: the adapted weights become ``W + (alpha/r)·B·A`` at
8 bits, everything else is the base's byte for byte, the engine serves the result like
the adapter on the base, and a misfit adapter is refused with no file left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egide.errors import ArtefactRejected
from egide.tuning.gguf_lora import base_info, convert, gguf_writer
from egide.tuning.gguf_merge import merge
from support.llama_server import tiny_model_path

RANK, ALPHA = 4, 8.0
ADAPTED = {"q_proj": "attn_q", "down_proj": "ffn_down"}


@pytest.fixture(scope="module")
def gemma(tmp_path_factory) -> Path:
    return tiny_model_path(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def merged(gemma, tmp_path_factory) -> tuple[Path, Path]:
    """(adapter, merged model) for a random adapter on two projections of one block."""
    where = tmp_path_factory.mktemp("merge")
    adapter = _lora(gemma, where / "a")
    return adapter, merge(gemma, adapter, where / "merged.gguf")


def _lora(base: Path, where: Path, layer: int = 2, scale: float = 0.1) -> Path:
    from safetensors.numpy import save_file

    _, shapes, _ = base_info(base)
    rng = np.random.default_rng(7)
    tensors = {}
    for module, name in ADAPTED.items():
        n_in, n_out = shapes[f"blk.{layer}.{name}.weight"]
        part = "mlp" if module == "down_proj" else "self_attn"
        key = f"base_model.model.model.layers.{layer}.{part}.{module}"
        tensors[f"{key}.lora_A.weight"] = rng.normal(0, scale, (RANK, n_in)).astype(np.float32)
        tensors[f"{key}.lora_B.weight"] = rng.normal(0, scale, (n_out, RANK)).astype(np.float32)
    where.mkdir(parents=True, exist_ok=True)
    (where / "adapter_config.json").write_text(json.dumps({"lora_alpha": ALPHA, "r": RANK}))
    save_file(tensors, str(where / "adapter_model.safetensors"))
    return convert(where, base, where / "adapter.gguf")


def test_adapted_weights_carry_the_update_and_the_rest_is_unchanged(gemma, merged) -> None:
    import gguf
    from gguf.quants import dequantize

    adapter, model = merged
    base, out = gguf.GGUFReader(str(gemma)), gguf.GGUFReader(str(model))
    lora = {
        t.name: np.asarray(t.data, dtype=np.float32) for t in gguf.GGUFReader(str(adapter)).tensors
    }

    assert [t.name for t in out.tensors] == [t.name for t in base.tensors]
    for key, field in base.fields.items():
        if not key.startswith("GGUF."):
            assert out.fields[key].contents() == field.contents(), key
    adapted = {f"blk.2.{name}.weight" for name in ADAPTED.values()}
    for before, after in zip(base.tensors, out.tensors, strict=True):
        if before.name not in adapted:
            assert after.tensor_type == before.tensor_type
            assert np.array_equal(np.asarray(after.data), np.asarray(before.data)), before.name
            continue
        assert after.tensor_type == gguf.GGMLQuantizationType.Q8_0
        weight = dequantize(before.data, before.tensor_type)
        update = (ALPHA / RANK) * lora[f"{before.name}.lora_b"] @ lora[f"{before.name}.lora_a"]
        got = dequantize(after.data, after.tensor_type)
        # 8-bit rounding: at most half a step of each 32-value block's scale.
        step = np.abs(weight + update).reshape(-1, 32).max(axis=1) / 127
        error = np.abs(got - (weight + update)).reshape(-1, 32).max(axis=1)
        assert np.all(error <= step * 0.6 + 1e-6), before.name
        # The update is far larger than the rounding: it is there, not lost in it.
        assert np.abs(update).mean() > 5 * np.abs(got - weight - update).mean()


def test_the_engine_serves_the_merged_model_like_the_adapter_on_the_base(gemma, merged) -> None:
    import xllamacpp

    adapter, model = merged
    prompts = [
        "The quartermaster counted the crates of",
        "Le convoi partit à l'aube vers",
        "Maintenance of the generator requires",
    ]

    def next_token(path: Path, lora: Path | None) -> list[dict[str, float]]:
        """For each prompt, the log-probabilities of the 8 likeliest next tokens."""
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        if lora:
            params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(str(lora), 1.0)]
        params.n_ctx, params.n_parallel, params.verbosity = 512, 1, 0
        server = xllamacpp.Server(params)
        found = []
        for prompt in prompts:
            body = {"prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": 8}
            step = server.handle_completions(body)["choices"][0]["logprobs"]["content"][0]
            found.append({t["token"]: t["logprob"] for t in step["top_logprobs"]})
        return found

    def distance(one: list[dict[str, float]], other: list[dict[str, float]]) -> float:
        """Mean gap of log-probabilities over the tokens both rank in their top 8."""
        gaps = [abs(a[t] - b[t]) for a, b in zip(one, other, strict=True) for t in a.keys() & b]
        return sum(gaps) / len(gaps)

    base = next_token(gemma, None)
    with_lora, with_merge = next_token(gemma, adapter), next_token(model, None)
    # 8-bit rounding moves Gemma's log-probabilities by about 0.1 by itself; the adapter
    # moves them several times more, and the merged model follows the adapter.
    assert distance(with_merge, with_lora) < 0.4 * distance(base, with_lora)
    assert distance(with_merge, with_lora) < 0.2


def _gguf(
    path: Path, arch: str, tensors: dict[str, np.ndarray], alpha: float | None = None
) -> Path:
    """A GGUF file of ``tensors``; a LoRA (with its alpha) when ``alpha`` is given."""
    import gguf

    with gguf_writer(path, arch) as writer:
        writer.add_string("general.name", f"tiny {arch} test file")
        if alpha is not None:
            writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for name, value in tensors.items():
            writer.add_tensor(name, value)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    return path


def _alien(path: Path, blocks: tuple[int, ...]) -> Path:
    """A GGUF LoRA of 17 → 9 projections: no block of the tiny model has that shape."""
    halves = {"lora_a": np.zeros((4, 17), np.float32), "lora_b": np.zeros((9, 4), np.float32)}
    tensors = {f"blk.{n}.attn_q.weight.{half}": v for n in blocks for half, v in halves.items()}
    return _gguf(path, "gemma3", tensors, alpha=8.0)


@pytest.mark.parametrize(
    ("blocks", "reason"),
    [((2, 99), r"no tensor 'blk\.99\.attn_q\.weight'.*another base"), ((2,), "do not fit")],
)
def test_an_adapter_of_another_model_is_refused(gemma, tmp_path, blocks, reason) -> None:
    with pytest.raises(ArtefactRejected, match=reason):
        merge(gemma, _alien(tmp_path / "alien.gguf", blocks), tmp_path / "merged.gguf")
    assert list(tmp_path.glob("merged*")) == []


def test_a_failure_while_writing_leaves_no_file(gemma, merged, tmp_path, monkeypatch) -> None:
    import gguf.quants

    def fail(*_args: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(gguf.quants, "quantize", fail)
    with pytest.raises(OSError, match="No space"):
        merge(gemma, merged[0], tmp_path / "merged.gguf")
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_says_what_is_wrong(gemma, tmp_path, capsys) -> None:
    from egide.tuning.gguf_merge import main

    assert main([str(gemma), str(tmp_path / "missing.gguf"), str(tmp_path / "out.gguf")]) == 2
    assert "missing.gguf does not exist" in capsys.readouterr().err
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("not a model")
    assert main([str(gemma), str(not_gguf), str(tmp_path / "out.gguf")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out.gguf").exists()


def test_float_weights_keep_their_type_and_get_the_update_exactly(tmp_path) -> None:
    import gguf

    rng = np.random.default_rng(3)
    weights = {
        "blk.0.attn_q.weight": rng.normal(size=(8, 64)).astype(np.float32),
        "blk.0.attn_k.weight": rng.normal(size=(8, 64)).astype(np.float16),
        "blk.0.attn_norm.weight": np.ones(64, np.float32),
    }
    base = _gguf(tmp_path / "base.gguf", "llama", weights)
    a = rng.normal(size=(2, 64)).astype(np.float32)
    b = rng.normal(size=(8, 2)).astype(np.float32)
    halves = {"lora_a": a, "lora_b": b}
    adapted = ("blk.0.attn_q.weight", "blk.0.attn_k.weight")
    tensors = {f"{name}.{half}": v for name in adapted for half, v in halves.items()}
    lora = _gguf(tmp_path / "lora.gguf", "llama", tensors, alpha=4.0)

    out = gguf.GGUFReader(str(merge(base, lora, tmp_path / "merged.gguf")))
    got = {t.name: np.asarray(t.data) for t in out.tensors}
    update = (4.0 / 2) * b @ a
    assert got["blk.0.attn_q.weight"].dtype == np.float32
    assert np.allclose(got["blk.0.attn_q.weight"], weights["blk.0.attn_q.weight"] + update)
    assert got["blk.0.attn_k.weight"].dtype == np.float16
    expected = (weights["blk.0.attn_k.weight"].astype(np.float32) + update).astype(np.float16)
    assert np.array_equal(got["blk.0.attn_k.weight"], expected)
    assert np.array_equal(got["blk.0.attn_norm.weight"], weights["blk.0.attn_norm.weight"])
    assert out.fields["general.name"].contents() == "tiny llama test file"
