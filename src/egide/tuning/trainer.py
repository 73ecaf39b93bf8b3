"""LoRA supervised fine-tuning with transformers + peft (the ``tuning`` extra).

The base loads from the registry's artefact: a GGUF through transformers' GGUF support
(dequantised to float32 on CPU, bfloat16 on GPU), or a directory of safetensors. Loss is
on assistant turns only (:mod:`egide.tuning.examples`). Batches follow a deterministic
order (one shuffled permutation per epoch, seeded by the spec, with examples of similar
length batched together: :func:`epoch_order`), so a resumed run trains on exactly the
batches it had not trained on. A checkpoint holds the adapter and the
optimizer's moments as safetensors (no pickle) and is switched to atomically.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes its share of every batch and
gradients are averaged by DistributedDataParallel; only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from egide.registry.artefacts import sha256_file
from egide.tuning.examples import IGNORE, ChatEncoder, Encoded, read_examples
from egide.tuning.gguf_lora import convert, read_gguf
from egide.tuning.gguf_merge import merge
from egide.tuning.spec import JobSpec
from egide.tuning.worker import Progress, Stop

LENGTH_WINDOW = 32  # batches sorted together by length (see epoch_order)


def load_base(spec: JobSpec, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(spec.base_model_path)
    if not path.exists():
        raise FileNotFoundError(2, "base model not found", str(path))
    where, extra = (path.parent, {"gguf_file": path.name}) if path.is_file() else (path, {})
    tokenizer = AutoTokenizer.from_pretrained(where, **extra)
    model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **extra)
    return tokenizer, model


def learning_rate(peak: float, step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then linear decay to zero at ``total``: a
    function of the step alone, so a resumed run needs no schedule state."""
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def trained_loss(causal: Any, ids: Any, mask: Any, labels: Any) -> Any:
    """What ``causal(input_ids, attention_mask, labels=labels).loss`` computes (next-token
    cross-entropy, mean over the labelled positions), with the output layer applied only
    where there is a label."""
    hidden = causal.model(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = causal.lm_head(hidden[:, :-1][keep]).float()
    cap = getattr(causal.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.nn.functional.cross_entropy(logits, targets[keep])


def epoch_order(lengths: list[int], epoch: int, seed: int, batch_size: int) -> list[int]:
    """The examples of ``epoch`` in training order: each once, the same for the same
    inputs. A shuffled permutation is cut into windows of ``LENGTH_WINDOW`` batches, each
    window sorted by length and cut into batches, and the full batches are shuffled (the
    one short batch goes last, so every batch boundary stays where it was made). Batches
    are padded to their longest example, so a short question batched with a long answer
    would cost as much as eight long answers."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * LENGTH_WINDOW
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        window = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [window[i : i + batch_size] for i in range(0, len(window), batch_size)]
    short = [b for b in batches if len(b) < batch_size]
    full = [b for b in batches if len(b) == batch_size]
    rng.shuffle(full)
    return [i for batch in (*full, *short) for i in batch]


class Trainer:
    def __init__(self, spec: JobSpec, progress: Progress, stop: Stop) -> None:
        self.spec = spec
        self.progress = progress
        self.stop = stop
        self.out = spec.output
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        cuda = torch.cuda.is_available()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local}" if cuda else "cpu")
        self.dtype = torch.bfloat16 if cuda else torch.float32
        self._orders: dict[int, list[int]] = {}

    # -- setup --------------------------------------------------------------------------

    def run(self) -> int:
        final = self.out / "adapter"
        if (final / "COMPLETE").exists():
            self.progress.write(status="succeeded")  # finished before a restart
            return 0
        torch.manual_seed(self.spec.seed)
        if self.device.type != "cuda":
            torch.set_num_threads(self.spec.threads or os.cpu_count() or 1)
        if self.world > 1:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)
        tokenizer, base = load_base(self.spec, self.dtype)
        encoder = ChatEncoder(tokenizer, self.spec.max_seq_len)
        train = [encoder.encode(e) for e in read_examples(map(Path, self.spec.train_files))]
        train = [e for e in train if e.trained]
        if not train:
            raise ValueError(
                f"no assistant token is left to train on within seq_len {self.spec.max_seq_len}"
            )
        valid = [encoder.encode(e) for e in read_examples(map(Path, self.spec.validation_files))]
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.model = self._with_lora(base).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=self.spec.learning_rate, weight_decay=self.spec.weight_decay
        )
        total = self.spec.training_steps or max(
            1, math.ceil((self.spec.epochs or 1.0) * len(train) / self.spec.batch_size)
        )
        start, tokens = self._resume()
        wrapped = self.model
        if self.world > 1:
            wrapped = torch.nn.parallel.DistributedDataParallel(self.model)
        return self._loop(wrapped, train, valid, start, total, tokens)

    def _with_lora(self, base: Any) -> Any:
        from peft import LoraConfig, get_peft_model

        present = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
        targets = [t for t in self.spec.target_modules if t in present]
        if not targets:
            raise ValueError(
                f"the base model has none of the target modules {self.spec.target_modules}"
            )
        config = LoraConfig(
            r=self.spec.lora_rank,
            lora_alpha=self.spec.alpha,  # type: ignore[arg-type]
            lora_dropout=0.0,
            target_modules=targets,
            bias="none",
            task_type="CAUSAL_LM",
        )
        return get_peft_model(base, config)

    # -- the loop -----------------------------------------------------------------------

    def _loop(
        self,
        model: Any,
        train: list[Encoded],
        valid: list[Encoded],
        start: int,
        total: int,
        tokens: int,
    ) -> int:
        every = self.spec.eval_every or max(1, total // 5)
        warmup = int(total * self.spec.warmup_fraction)
        model.train()
        for step in range(start, total):
            if self.stop.requested:
                self._checkpoint(step, tokens, self._validate(valid))
                self.progress.write(status="cancelled")
                return 2
            began = time.perf_counter()
            batch = self._batch(train, step)
            ids, mask, labels = self._collate(batch)
            loss = self._loss(model, ids, mask, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            rate = learning_rate(self.spec.learning_rate, step, total, warmup)
            for group in self.optimizer.param_groups:
                group["lr"] = rate
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            seen = int(mask.sum()) * self.world
            tokens += seen
            took = time.perf_counter() - began
            self.progress.write(
                step=step + 1,
                total_steps=total,
                train_loss=round(float(loss.detach()), 5),
                learning_rate=rate,
                trained_tokens=tokens,
                tokens_per_s=round(seen / took, 1),
            )
            if (step + 1) % every == 0 and step + 1 < total:
                self._checkpoint(step + 1, tokens, self._validate(valid))
                model.train()
        self._finish(total, tokens, self._validate(valid))
        return 0

    def _loss(self, model: Any, ids: Any, mask: Any, labels: Any) -> Any:
        """Mean cross-entropy over the trained tokens. In one process the output layer is
        applied to the trained positions only (the assistant turns): with vocabularies of
        150,000-260,000 words it is a large share of the compute and most of the memory,
        which is spent for nothing on masked positions. Under a launcher the wrapped
        model's own forward is used, so that DistributedDataParallel sees it."""
        causal = self.model.get_base_model()
        if self.world > 1 or not (hasattr(causal, "model") and hasattr(causal, "lm_head")):
            return model(input_ids=ids, attention_mask=mask, labels=labels).loss
        return trained_loss(causal, ids, mask, labels)

    def _batch(self, data: list[Encoded], step: int) -> list[Encoded]:
        """The examples of ``step``: a window over the epochs' permutations; this process's
        share of it under torchrun."""
        size = self.spec.batch_size
        picked = []
        for position in range(step * size, (step + 1) * size):
            epoch, index = divmod(position, len(data))
            picked.append(data[self._order(epoch, data)[index]])
        return picked[self.rank :: self.world] or picked[:1]

    def _order(self, epoch: int, data: list[Encoded]) -> list[int]:
        """The order of ``epoch`` (:func:`epoch_order`), made once."""
        if epoch not in self._orders:
            lengths = [len(e.input_ids) for e in data]
            self._orders[epoch] = epoch_order(lengths, epoch, self.spec.seed, self.spec.batch_size)
        return self._orders[epoch]

    def _collate(self, batch: list[Encoded]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(e.input_ids) for e in batch)
        ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        for row, example in enumerate(batch):
            n = len(example.input_ids)
            ids[row, :n] = torch.tensor(example.input_ids)
            mask[row, :n] = 1
            labels[row, :n] = torch.tensor(example.labels)
        return ids.to(self.device), mask.to(self.device), labels.to(self.device)

    @torch.no_grad()
    def _validate(self, valid: list[Encoded]) -> float | None:
        if not valid:
            return None
        self.model.eval()
        losses, weights = 0.0, 0
        for i in range(0, len(valid), self.spec.batch_size):
            batch = [e for e in valid[i : i + self.spec.batch_size] if e.trained]
            if not batch:
                continue
            ids, mask, labels = self._collate(batch)
            loss = self._loss(self.model, ids, mask, labels)
            count = int((labels != IGNORE).sum())
            losses += float(loss) * count
            weights += count
        return round(losses / weights, 5) if weights else None

    # -- checkpoints and the result -----------------------------------------------------

    def _checkpoint(self, step: int, tokens: int, validation: float | None) -> None:
        if self.rank == 0:
            from egide.tuning.checkpoint import save_checkpoint

            save_checkpoint(self.out, self.model, self.optimizer, step, tokens)
        self.progress.write(checkpoint=step, step=step, validation_loss=validation)

    def _resume(self) -> tuple[int, int]:
        from egide.tuning.checkpoint import load_checkpoint

        return load_checkpoint(self.out, self.model, self.optimizer)

    def _finish(self, total: int, tokens: int, validation: float | None) -> None:
        if self.rank == 0:
            partial = self.out / "adapter.partial"
            shutil.rmtree(partial, ignore_errors=True)
            self.model.save_pretrained(str(partial), save_embedding_layers=False)
            base_path = Path(self.spec.base_model_path)
            if base_path.is_file():
                base = read_gguf(base_path)
                gguf = convert(partial, base_path, partial / "adapter.gguf", base)
                (partial / "adapter.gguf.sha256").write_text(sha256_file(gguf) + "\n")
                if self.spec.merge:
                    merged = merge(base_path, gguf, partial / "merged.gguf", base)
                    (partial / "merged.gguf.sha256").write_text(sha256_file(merged) + "\n")
            (partial / "COMPLETE").write_text(json.dumps({"steps": total, "tokens": tokens}))
            os.replace(partial, self.out / "adapter")
        self.progress.write(checkpoint=total, step=total, validation_loss=validation)
        self.progress.write(status="succeeded", trained_tokens=tokens)
