"""Merge a GGUF LoRA into its base: one GGUF model that serves at the base's speed.

llama.cpp applies an unmerged adapter as two extra small matrix products per adapted
projection and per token, which costs a fifth of the decoding speed on CPU when every
attention and MLP projection is adapted. A merged model costs nothing at serving time:
each adapted weight becomes ``W + (alpha / rank) · B · A``, computed from the base's
dequantised weight and stored as Q8_0 (8 bits per weight: the update survives the
rounding, which it would not at 4 or 5 bits — see docs/benchmarks.md), or in its own type
when the base keeps it in F32 or F16. Every other tensor and every metadata key are
copied unchanged, so the tokenizer and chat template are the base's own.

The file is written under a temporary name, tensor by tensor (the base is memory-mapped;
at most one dequantised matrix is in memory at a time), and renamed only when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from egide.errors import ArtefactRejected
from egide.tuning.gguf_lora import gguf_writer, read_gguf


def _lora_pairs(adapter: Any) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float]:
    """{base tensor name: (A, B)} and the adapter's alpha, from a GGUF LoRA reader."""
    import gguf

    field = adapter.fields.get(gguf.Keys.Adapter.LORA_ALPHA)
    if field is None:
        raise ArtefactRejected("the adapter has no adapter.lora.alpha: not a GGUF LoRA")
    alpha = float(field.contents())
    sides: dict[str, dict[str, np.ndarray]] = {}
    for tensor in adapter.tensors:
        base, _, side = tensor.name.rpartition(".lora_")
        if side not in ("a", "b"):
            raise ArtefactRejected(f"adapter tensor {tensor.name!r} is not a LoRA half")
        sides.setdefault(base, {})[side] = np.asarray(tensor.data, dtype=np.float32)
    pairs = {}
    for name, pair in sides.items():
        if set(pair) != {"a", "b"}:
            raise ArtefactRejected(f"adapter tensor {name!r} lacks one of its LoRA halves")
        pairs[name] = (pair["a"], pair["b"])
    return pairs, alpha


def merge(base_gguf: Path, adapter_gguf: Path, out: Path, base: Any | None = None) -> Path:
    """Write ``out``: the base with the adapter merged into its weights; ``base``: the
    base already read (:func:`egide.tuning.gguf_lora.read_gguf`)."""
    base = read_gguf(base_gguf) if base is None else base
    pairs, alpha = _lora_pairs(read_gguf(adapter_gguf))
    tensors = {t.name: t for t in base.tensors}
    missing = sorted(set(pairs) - set(tensors))
    if missing:
        raise ArtefactRejected(
            f"the base {base_gguf.name} has no tensor {missing[0]!r}: the adapter was "
            "trained on another base model"
        )
    for name, (a, b) in pairs.items():
        n_in, n_out = (int(n) for n in tensors[name].shape[:2])
        if a.shape[1] != n_in or b.shape[0] != n_out or a.shape[0] != b.shape[1]:
            raise ArtefactRejected(
                f"{name}: adapter shapes {a.shape} × {b.shape} do not fit the base's "
                f"{n_out} × {n_in}; the adapter was trained on another base model"
            )
    with gguf_writer(out, str(base.fields["general.architecture"].contents())) as writer:
        _write(base, pairs, alpha, writer)
    return out


def _write(
    base: Any, pairs: dict[str, tuple[np.ndarray, np.ndarray]], alpha: float, writer: Any
) -> None:
    import gguf
    from gguf.quants import dequantize, quant_shape_to_byte_shape, quantize

    for field in base.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    if "general.alignment" in base.fields:
        writer.data_alignment = int(base.fields["general.alignment"].contents())
    q8 = gguf.GGMLQuantizationType.Q8_0
    kept = {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16}
    for tensor in base.tensors:
        data = tensor.data
        if tensor.name in pairs and tensor.tensor_type not in kept:
            n_in, n_out = (int(n) for n in tensor.shape[:2])
            shape = quant_shape_to_byte_shape((n_out, n_in), q8)
            writer.add_tensor_info(tensor.name, shape, np.dtype(np.uint8), int(np.prod(shape)), q8)
        else:
            writer.add_tensor_info(
                tensor.name, data.shape, data.dtype, data.nbytes, tensor.tensor_type
            )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in base.tensors:
        if tensor.name not in pairs:
            writer.write_tensor_data(tensor.data)
            continue
        a, b = pairs[tensor.name]
        weight = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        weight += (alpha / a.shape[0]) * (b @ a)
        if tensor.tensor_type in kept:
            writer.write_tensor_data(weight.astype(tensor.data.dtype))
        else:
            writer.write_tensor_data(quantize(weight, q8))


def main(argv: list[str] | None = None) -> int:
    """``python -m egide.tuning.gguf_merge BASE.gguf LORA.gguf OUT.gguf``"""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m egide.tuning.gguf_merge",
        description="Write a GGUF model: BASE with the GGUF LoRA merged into its weights.",
    )
    parser.add_argument("base", type=Path, help="the base model (GGUF)")
    parser.add_argument("lora", type=Path, help="a GGUF LoRA trained on that base")
    parser.add_argument("out", type=Path, help="where to write the merged model")
    args = parser.parse_args(argv)
    for path in (args.base, args.lora):
        if not path.is_file():
            print(f"error: {path} does not exist or is not a file", file=sys.stderr)
            return 2
    try:
        merge(args.base, args.lora, args.out)
    except (ArtefactRejected, ValueError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
