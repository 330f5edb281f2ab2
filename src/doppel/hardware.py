"""What the machine offers: processes, device, bf16 support, and a rough memory estimate."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator


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


# the type of every precision field: an old dtype name is read as its word
PrecisionWord = Annotated[Precision, BeforeValidator(precision_word)]


def use_bf16(precision: str) -> bool:
    """Whether `precision` means bf16 here."""
    if precision != "auto":
        return precision == "bf16"
    if has_cuda():
        import torch

        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def torch_dtype(precision: str):
    """The torch dtype weights load in for `precision` (see use_bf16)."""
    import torch

    return torch.bfloat16 if use_bf16(precision) else torch.float32


@dataclass
class ModelShape:
    """What the estimate needs from a model, counted on the meta device (no weights read)."""

    params: int
    linear_params: int  # weights of the decoder layers' linear layers (what 4-bit quantises)
    hidden: int
    intermediate: int
    layers: int
    vocab: int
    lora_params: int  # adapter parameters at the config's rank, every linear layer targeted
    lora_inputs: int  # per layer: the summed input widths of the adapted linear layers


@dataclass
class MemoryEstimate:
    params: int
    trainable: int
    weights_gb: float
    optimizer_gb: float
    activations_gb: float
    runtime_gb: float

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.optimizer_gb + self.activations_gb + self.runtime_gb


# What autograd keeps per token and layer, in activation-sized values (norms, q/k/v, attention
# out, MLP in and out, the residual stream; the MLP's four intermediate-wide tensors), plus the
# backward pass's working set. Checked against measured peaks (bench/memory.py,
# docs/benchmarks.md): 9-18% above them on CPU.
HIDDEN_VALUES, INTERMEDIATE_VALUES, BACKWARD_FACTOR = 10, 4, 1.25
# python + torch + transformers + peft resident before any tensor (CPU peaks are process RSS;
# CUDA peaks are the allocator's, which never counts the CUDA context)
CPU_RUNTIME_GB = 0.7


def estimate_memory(config, shape: ModelShape, bf16: bool, processes: int, cuda: bool,
                    labelled_share: float = 1.0) -> MemoryEstimate:
    """Peak bytes per device: weights, gradients + AdamW state, activations, runtime. A planning
    figure (goal: within 30% of the measured peak, docs/benchmarks.md)."""
    gb = 1024**3
    shard = processes if config.fsdp else 1
    act = 2 if bf16 else 4
    full = config.method == "full"
    if config.method == "qlora":  # NF4 linear weights (+ their scales); PEFT's
        # prepare_model_for_kbit_training makes the rest (embeddings, norms, head) fp32
        weights = shape.linear_params * 0.53 + (shape.params - shape.linear_params) * 4
    else:  # full fine-tuning on GPUs keeps fp32 master weights under bf16 autocast
        weights = shape.params * (4 if full and cuda else act)
    trainable = shape.params if full else shape.lora_params
    # gradients in the weights' dtype and two AdamW moments; LoRA adapters are fp32
    optimizer = trainable * (3 * (4 if cuda or not bf16 else 2) if full else 12)
    tokens = config.micro_batch_size * config.max_length
    per_layer = act * (HIDDEN_VALUES * shape.hidden + INTERMEDIATE_VALUES * shape.intermediate)
    if not full and act == 2:
        per_layer += 4 * shape.lora_inputs  # PEFT casts each adapter's input to fp32
    if config.gradient_checkpointing:  # layer inputs kept, one layer recomputed at a time
        layers_bytes = tokens * (act * shape.hidden * shape.layers + per_layer)
    else:
        layers_bytes = tokens * per_layer * shape.layers
    # logits only where a label is (train/loss.py): the output, its fp32 copy and gradient
    logits = tokens * labelled_share * shape.vocab * (act + 8)
    return MemoryEstimate(
        params=shape.params,
        trainable=trainable,
        weights_gb=weights / shard / gb,
        optimizer_gb=optimizer / shard / gb,
        activations_gb=(layers_bytes * BACKWARD_FACTOR + logits) / gb,
        runtime_gb=0.0 if cuda else CPU_RUNTIME_GB,
    )
