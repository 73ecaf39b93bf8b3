"""Convert a PEFT LoRA adapter to a GGUF LoRA that llama.cpp loads on top of its base.

The adapter file carries ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha`` and, for every adapted projection of every block, two tensors
``blk.N.<tensor>.weight.lora_a`` (rank × in) and ``.lora_b`` (out × rank), in the
architecture of the base GGUF (llama.cpp refuses an adapter of another architecture).
Each pair is checked against the base's tensor shape before anything is written, and the
file is written under a temporary name and renamed only when complete.

GGUF files of the ``llama`` architecture (Llama, Mistral) store the query and key
projections with their rows permuted for llama.cpp's rotary embedding; transformers undoes
that when it loads them, so the ``lora_b`` of those projections, trained against the
unpermuted rows, is permuted back here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from egide.errors import ArtefactRejected

_NAMES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
_PERMUTED_ARCHS = {"llama"}


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    value = field.parts[field.data[0]]
    if field.types and field.types[0].name == "STRING":
        return bytes(value).decode()
    return value.tolist()[0] if hasattr(value, "tolist") else value


def rope_permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for a rotary projection: within each head, the two halves of
    the head's rows are interleaved."""
    rows = weights.shape[0]
    shaped = weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
    return shaped.swapaxes(1, 2).reshape(weights.shape)


def read_gguf(path: Path) -> Any:
    """A reader of ``path`` (parsing a model's index takes seconds: read it once)."""
    import gguf

    return gguf.GGUFReader(str(path))


def base_info(
    base_gguf: Path, reader: Any | None = None
) -> tuple[str, dict[str, tuple[int, ...]], dict[str, int]]:
    """The base's architecture, tensor shapes (in GGUF order: in, out) and head counts;
    ``reader``: the base already read (:func:`read_gguf`)."""
    reader = read_gguf(base_gguf) if reader is None else reader
    arch = _field(reader, "general.architecture")
    if not arch:
        raise ArtefactRejected(f"{base_gguf} has no general.architecture: not a model GGUF")
    shapes = {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}
    heads = {
        "heads": int(_field(reader, f"{arch}.attention.head_count") or 0),
        "kv_heads": int(_field(reader, f"{arch}.attention.head_count_kv") or 0),
    }
    return arch, shapes, heads


def convert(adapter_dir: Path, base_gguf: Path, out: Path, base: Any | None = None) -> Path:
    """Write ``out`` (a GGUF LoRA) from the PEFT adapter in ``adapter_dir``; ``base``: the
    base already read (:func:`read_gguf`)."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    arch, shapes, heads = base_info(base_gguf, base)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        match = _KEY.search(key)
        if not match or match.group(2) not in _NAMES:
            raise ArtefactRejected(
                f"adapter tensor {key!r} is not a LoRA of a known projection "
                f"({', '.join(_NAMES)}); train with those target modules"
            )
        block, proj, side = match.groups()
        name = f"blk.{block}.{_NAMES[proj]}.weight"
        pairs.setdefault(name, {})[side] = value.astype(np.float32)
    writer_tensors: list[tuple[str, np.ndarray]] = []
    for name, pair in sorted(pairs.items()):
        if set(pair) != {"A", "B"} or name not in shapes:
            raise ArtefactRejected(f"{name}: the base {base_gguf.name} has no such tensor")
        a, b = pair["A"], pair["B"]
        n_in, n_out = shapes[name][0], shapes[name][1]
        if a.shape[1] != n_in or b.shape[0] != n_out or a.shape[0] != b.shape[1]:
            raise ArtefactRejected(
                f"{name}: adapter shapes {a.shape} × {b.shape} do not fit the base's "
                f"{n_out} × {n_in}; the adapter was trained on another base model"
            )
        if arch in _PERMUTED_ARCHS and name.endswith(("attn_q.weight", "attn_k.weight")):
            count = heads["heads"] if "attn_q" in name else heads["kv_heads"] or heads["heads"]
            b = rope_permute(b, count)
        writer_tensors += [(f"{name}.lora_a", a), (f"{name}.lora_b", b)]
    if not writer_tensors:
        raise ArtefactRejected(f"{adapter_dir} holds no LoRA tensor")
    with gguf_writer(out, arch) as writer:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
        for name, value in writer_tensors:
            writer.add_tensor(name, np.ascontiguousarray(value))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    return out


@contextmanager
def gguf_writer(out: Path, arch: str) -> Iterator[Any]:
    """A ``GGUFWriter`` on a temporary name: closed, fsynced and renamed to ``out`` when the
    block ends normally; closed and deleted when it raises, so ``out`` is whole or absent."""
    import gguf

    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch)
    try:
        try:
            yield writer
        finally:
            writer.close()
        with partial.open("rb") as stream:
            os.fsync(stream.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)
