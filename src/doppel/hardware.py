"""What the machine offers: processes, device, bf16 support, and a rough memory estimate."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Literal, get_args


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@cache
def cpu_has_bf16() -> bool:
    """AMX or AVX-512 bf16 make bf16 weights faster than fp32 on CPU (a LoRA step: 1.4x on a
    Zen 4 EPYC with avx512_bf16 alone, docs/benchmarks.md)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


# One precision vocabulary for every command: train, chat, serve and eval all say auto|bf16|fp32.
Precision = Literal["auto", "bf16", "fp32"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
PRECISION_HELP = "auto (bf16 where the CPU or GPU has it, else fp32), bf16 or fp32"
# the words `--dtype` took before (chat and serve); still read, so old commands keep working
_DTYPE_WORDS = {"float32": "fp32", "bfloat16": "bf16"}


def precision_word(value: object) -> object:
    """The precision word for an old dtype name (float32 -> fp32); anything else unchanged."""
    return _DTYPE_WORDS.get(value, value) if isinstance(value, str) else value


def use_bf16(precision: str, cpu_auto: bool = True) -> bool:
    """Whether `precision` means bf16 here. `cpu_auto=False` makes "auto" fp32 on a CPU even where
    the CPU has bf16 (eval does this, so its perplexities compare across machines)."""
    if precision != "auto":
        return precision == "bf16"
    if has_cuda():
        import torch

        return torch.cuda.is_bf16_supported()
    return cpu_auto and cpu_has_bf16()


def torch_dtype(precision: str, cpu_auto: bool = True):
    """The torch dtype weights load in for `precision` (see use_bf16)."""
    import torch

    return torch.bfloat16 if use_bf16(precision, cpu_auto) else torch.float32


@dataclass
class MemoryEstimate:
    params: int
    trainable: int
    weights_gb: float
    optimizer_gb: float
    activations_gb: float

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.optimizer_gb + self.activations_gb


def estimate_memory(
    config,
    n_params: int,
    hidden: int,
    layers: int,
    vocab: int,
    lora_params: int,
    bf16: bool,
    processes: int,
) -> MemoryEstimate:
    """Bytes per device: weights, grads + AdamW state, activations (a planning figure, +-30%)."""
    gb = 1024**3
    weight_bytes = {"qlora": 0.55, "full": 2.0 if bf16 else 4.0}.get(
        config.method, 2.0 if bf16 else 4.0
    )
    shard = processes if config.fsdp else 1
    trainable = n_params if config.method == "full" else lora_params
    # fp32 gradients + two AdamW moments (+ fp32 master copy when weights are bf16)
    optimizer_bytes = (12 + (4 if bf16 else 0)) * trainable
    tokens = config.micro_batch_size * config.max_length
    per_layer = 2 * hidden if config.gradient_checkpointing else 34 * hidden
    # fp32 logits and their gradient: an upper bound (train/loss.py computes labelled ones only)
    activation_bytes = tokens * (per_layer * layers * (2 if bf16 else 4) / 2 + vocab * 4 * 2)
    return MemoryEstimate(
        params=n_params,
        trainable=trainable,
        weights_gb=n_params * weight_bytes / shard / gb,
        optimizer_gb=optimizer_bytes / shard / gb,
        activations_gb=activation_bytes / gb,
    )
