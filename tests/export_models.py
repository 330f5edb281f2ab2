"""Tiny random models of every family doppel trains, and what export tests compare them with."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from builders import write_dataset
from conftest import write_adapter_run

HISTORY = [("Sam", "hey"), ("Alex", "heyy"), ("Alex", "lol"),
           ("Sam", "what's up? how was the trip to the lake?")]
FAMILIES = ("llama", "qwen2", "qwen3", "mistral", "gemma3")
needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed (pip install "
                                            "'doppel[llama]')")


def tiny_config(family: str, tokenizer):
    """A 2-layer config of `family`. Qwen3 and Gemma 3 use the head sizes transformers' GGUF reader
    assumes when a file does not say (Qwen3: head_dim 128; Gemma 3: query_pre_attn_scalar 256)."""
    from transformers import Gemma3TextConfig, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=1024, tie_word_embeddings=True,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    narrow = {**common, "num_attention_heads": 2, "num_key_value_heads": 1}
    return {
        "llama": lambda: LlamaConfig(**common),
        "qwen2": lambda: Qwen2Config(**common),
        "qwen3": lambda: Qwen3Config(**narrow, head_dim=128),
        "mistral": lambda: MistralConfig(**{**common, "tie_word_embeddings": False}),
        # 6 layers: the sixth is Gemma 3's global-attention layer (its own rope base)
        "gemma3": lambda: Gemma3TextConfig(**{**narrow, "num_hidden_layers": 6}, head_dim=256,
                                           query_pre_attn_scalar=256, sliding_window=512),
    }[family]()


def write_family_run(root: Path, family: str) -> Path:
    """A LoRA run (non-zero adapter) on a tiny random `family` model with the embedded tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from doppel.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model("smollm2-135m"))
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config(family, tokenizer)).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    dataset = write_dataset(root / "dataset", conversations=12)
    return write_adapter_run(root / "run", root / "base", dataset)


def write_embedded_run(root: Path, model: str) -> Path:
    """A LoRA run (non-zero adapter) on an embedded model."""
    from doppel.models import resolve_model

    dataset = write_dataset(root / "dataset", conversations=12)
    return write_adapter_run(root / "run", resolve_model(model), dataset, max_length=512)


def greedy_steps(model, prompt: list[int], tokens: int) -> tuple[list[int], list[float]]:
    """Greedy ids (stops ignored) and, per step, the lead of the chosen logit over the next best."""
    import torch
    from transformers import DynamicCache

    ids, margins, cache, step = [], [], DynamicCache(), torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(tokens):
            out = model(step, cache=cache, use_cache=True)
            best = out.logits[0, -1].float().topk(2)
            ids.append(int(best.indices[0]))
            margins.append(float(best.values[0] - best.values[1]))
            step = best.indices[:1].view(1, 1)
    return ids, margins


def agreement(ids: list[int], other: list[int]) -> int:
    """How many leading tokens two continuations share."""
    return next((i for i, (a, b) in enumerate(zip(ids, other, strict=False)) if a != b),
                min(len(ids), len(other)))


def decided(margins: list[float], tolerance: float) -> int:
    """Leading steps whose choice no error within `tolerance` per logit can flip (2x: both the
    winner and the runner-up may move)."""
    return next((i for i, margin in enumerate(margins) if margin <= 2 * tolerance), len(margins))


def last_logits(model, prompt: list[int]):
    import torch

    with torch.no_grad():
        return model(torch.tensor([prompt])).logits[0, -1].float()


def rounded(model, kind: str):
    """A copy of `model` whose matrices went through the GGUF type `kind` and back, as the exporter
    stores them (vectors stay float32): what an export can at best be equal to."""
    import copy

    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    twin = copy.deepcopy(model)
    with torch.no_grad():
        for param in twin.parameters():
            if param.dim() < 2 or kind == "F32":
                continue
            if kind == "Q8_0":
                blocks = quantize(param.numpy(), GGMLQuantizationType.Q8_0)
                back = dequantize(blocks, GGMLQuantizationType.Q8_0).reshape(param.shape)
                param.copy_(torch.from_numpy(back))
            else:
                param.copy_(param.to(torch.float16 if kind == "F16" else torch.bfloat16).float())
    return twin
