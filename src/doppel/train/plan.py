"""What a run will do, known before any weights load: the config resolved against the data and
the model (windows, steps, processes, precision) and a memory estimate (printed by --dry-run)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from doppel.chatformat import ChatEncoder
from doppel.data.dataset import Dataset, load_dataset
from doppel.errors import DoppelError
from doppel.hardware import (
    MemoryEstimate,
    ModelShape,
    estimate_memory,
    has_cuda,
    use_bf16,
    world_size,
)
from doppel.models import load_tokenizer, resolve_model
from doppel.train.config import TrainConfig
from doppel.train.data import WindowDataset, build_windows, trained_speakers, window_memories
from doppel.train.distributed import launched


@dataclass
class RunPlan:
    """What a run will do, known before any weights load (printed by --dry-run)."""

    config: TrainConfig
    dataset: Dataset
    model_dir: Path
    trained: set[str] | None
    train: WindowDataset
    val: WindowDataset
    train_tokens: int
    trained_tokens: int
    truncated: int
    with_memories: int
    steps_per_epoch: int
    total_steps: int
    processes: int
    bf16: bool
    tokenizer: object

    def summary(self) -> dict:
        return {
            "model": self.config.model,
            "method": self.config.method,
            "trained_speakers": sorted(self.trained) if self.trained else "all",
            "train_windows": len(self.train),
            "val_windows": len(self.val),
            "train_tokens": self.train_tokens,
            "trained_tokens": self.trained_tokens,
            "truncated_messages": self.truncated,
            "windows_with_memories": self.with_memories,
            "processes": self.processes,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "precision": "bf16" if self.bf16 else "fp32",
        }


def plan_run(dataset_dir: Path, config: TrainConfig) -> RunPlan:
    """Resolve the model and tokenise the data: everything but loading weights."""
    dataset = load_dataset(dataset_dir)
    if config.method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        raise DoppelError("qlora needs bitsandbytes (4-bit NF4): pip install bitsandbytes")
    model_dir = resolve_model(config.model)
    tokenizer = load_tokenizer(model_dir)
    trained = trained_speakers(config.train_on, dataset)
    encoder = ChatEncoder(tokenizer)
    memories = window_memories(dataset, config.memory_share, config.max_length, config.seed)
    train = build_windows(dataset, encoder, trained, config.max_length, "train", memories)
    if not train.examples:
        who = ", ".join(sorted(trained)) if trained else "anyone"
        raise DoppelError(f"no training conversation contains a message by {who}; check --train-on")
    val = build_windows(dataset, encoder, trained, config.max_length, "val", memories)
    if memories is not None:
        memories.index.close()
    # a dry run (or `doppel train --nproc N` before it launches) plans for the processes to come
    processes = world_size() if launched() else config.nproc
    per_step = config.micro_batch_size * config.grad_accum * processes
    steps_per_epoch = max(1, -(-len(train.examples) // per_step))
    total = (
        config.max_steps if config.max_steps > 0 else int(steps_per_epoch * config.epochs + 0.999)
    )
    return RunPlan(
        config=config,
        dataset=dataset,
        model_dir=model_dir,
        trained=trained,
        train=WindowDataset(train.examples),
        val=WindowDataset(val.examples[: config.val_max_windows]),
        train_tokens=train.stats.tokens,
        trained_tokens=train.stats.trained_tokens,
        truncated=train.stats.truncated_messages,
        with_memories=train.stats.extra.get("windows_with_memories", 0),
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        processes=processes,
        bf16=use_bf16(config.precision),
        tokenizer=tokenizer,
    )


def model_shape(plan: RunPlan) -> ModelShape:
    """Count parameters on the meta device: no weights are read."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_config = AutoConfig.from_pretrained(plan.model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config)
    text = model_config.get_text_config()
    layer = model.get_decoder().layers[0]
    in_layer = [m for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    r = plan.config.lora_r
    return ModelShape(
        params=sum(p.numel() for p in model.parameters()),
        linear_params=text.num_hidden_layers * sum(m.weight.numel() for m in in_layer),
        hidden=text.hidden_size,
        intermediate=getattr(text, "intermediate_size", 4 * text.hidden_size),
        layers=text.num_hidden_layers,
        vocab=text.vocab_size,
        lora_params=text.num_hidden_layers * sum(r * (m.in_features + m.out_features)
                                                 for m in in_layer),
        lora_inputs=sum(m.in_features for m in in_layer),
    )


def memory_estimate(plan: RunPlan, cuda: bool | None = None) -> MemoryEstimate:
    """Memory per device for this plan, on this machine's kind of device unless `cuda` says."""
    share = plan.trained_tokens / plan.train_tokens if plan.train_tokens else 1.0
    return estimate_memory(plan.config, model_shape(plan), plan.bf16, plan.processes,
                           has_cuda() if cuda is None else cuda, labelled_share=share)
