"""The training config: one typed field per knob, feeding recipes (YAML), flags and the run folder.

A recipe is a YAML file of these fields; flags override it; the result is validated here (unknown
keys and conflicting options are rejected before any weights load) and written next to the weights.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from doppel.errors import DoppelError

DEFAULT_RECIPE = "cpu-demo"


class TrainConfig(BaseModel):
    """Everything that decides how a run is made."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(
        "smollm2-135m", description="embedded name, local HF folder, .gguf file or hub id"
    )
    method: Literal["lora", "qlora", "full"] = Field("lora", description="what is trained")
    train_on: str = Field("me", description="whose messages carry loss: me, all, or NAME,NAME")
    max_length: int = Field(1024, ge=32, description="tokens per training window")
    micro_batch_size: int = Field(8, ge=1, description="windows per device per step")
    grad_accum: int = Field(1, ge=1, description="micro batches per optimizer step")
    epochs: float = Field(3.0, gt=0, description="passes over the training windows")
    max_steps: int = Field(
        -1, description="stop after this many optimizer steps (-1: epochs decide)"
    )
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate (cosine schedule)")
    warmup_ratio: float = Field(0.05, ge=0, le=0.5, description="share of steps spent warming up")
    weight_decay: float = Field(0.0, ge=0)
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA scale numerator; usually 2 x rank")
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    use_rslora: bool = Field(False, description="rank-stabilised LoRA scaling (alpha / sqrt(r))")
    target_modules: str = Field(
        "all-linear", description="LoRA targets: all-linear or a comma list"
    )
    batching: Literal["grouped", "packed", "padded"] = Field(
        "grouped",
        description="grouped: length-bucketed padded batches (fast on CPU); "
        "packed: padding-free rows "
        "with per-conversation positions (fast with FlashAttention); padded: plain random batches",
    )
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 where supported"
    )
    gradient_checkpointing: bool = Field(False, description="recompute activations to save memory")
    compile: bool = Field(False, description="torch.compile the model (pays off on long runs)")
    fsdp: bool = Field(False, description="shard full fine-tuning over processes with FSDP2")
    nproc: int = Field(
        1, ge=1, description="processes to launch (torchrun) when run as `doppel train`"
    )
    seed: int = Field(0, description="seed for weights init, data order and dropout")
    save_steps: int = Field(200, ge=1, description="checkpoint every N optimizer steps")
    logging_steps: int = Field(5, ge=1, description="log loss and throughput every N steps")
    val_max_windows: int = Field(256, ge=1, description="cap on validation windows per evaluation")
    expected_memory: str = Field("", description="documentation: expected peak memory per device")
    expected_time: str = Field("", description="documentation: expected wall time")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.fsdp and self.method != "full":
            raise ValueError(
                "fsdp shards full fine-tuning; use method: full (or drop fsdp for LoRA)"
            )
        if self.method == "qlora" and self.fsdp:
            raise ValueError("qlora runs on one GPU; drop fsdp")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False, allow_unicode=True)


def recipe_names() -> list[str]:
    folder = resources.files("doppel.train") / "recipes"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _recipe_text(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise DoppelError(f"recipe file {path} does not exist")
        return str(path), path.read_text(encoding="utf-8")
    shipped = resources.files("doppel.train") / "recipes" / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise DoppelError(
            f"unknown recipe {name_or_path!r}; shipped recipes: {', '.join(recipe_names())}"
        )
    return name_or_path, shipped.read_text(encoding="utf-8")


def load_config(recipe: str | None, overrides: dict) -> TrainConfig:
    """A recipe (shipped name or YAML path) with flag overrides applied, validated."""
    source, text = _recipe_text(recipe or DEFAULT_RECIPE)
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise DoppelError(f"recipe {source} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise DoppelError(f"recipe {source} must be a mapping of settings")
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**values)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "recipe"
        if first["type"] == "extra_forbidden":
            raise DoppelError(f"unknown recipe key {key!r} in {source}") from None
        raise DoppelError(f"bad setting {key} in {source}: {first['msg']}") from None
