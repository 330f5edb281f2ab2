"""The training config: one typed field per knob, feeding recipes (YAML), flags and the run folder.

A recipe is a YAML file of these fields; flags override it; the result is validated here (unknown
keys and conflicting options are rejected before any weights load) and written next to the weights.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import model_validator

from doppel.errors import DoppelError
from doppel.hardware import PrecisionWord
from doppel.options import Options, build, option, precision_option

DEFAULT_RECIPE = "cpu-demo"


class PreferConfig(Options):
    """The preference stage's settings (`doppel train --prefer`, train/prefer.py): a recipe's
    `prefer:` block, under its `--prefer-*` flags; with --prefer, --learning-rate, --epochs and
    --grad-accum set this block's keys of the same name (the stage's, not the run's)."""

    pairs: int = option(64, "With --prefer: self-play pairs at most (your train-split turns "
                        "after someone else).", flags=("--prefer-pairs",), ge=1)
    beta: float = option(0.1, "With --prefer: DPO's beta, how far the margin may pull the run "
                         "from where it starts.", flags=("--prefer-beta",), gt=0)
    nll_weight: float = option(0.0, "With --prefer: weight of the real reply's mean NLL added "
                               "to the DPO loss (RPO; 0: plain DPO).",
                               flags=("--prefer-nll-weight",), ge=0)
    rounds: int = option(1, "With --prefer: self-play rounds (each writes new replies with the "
                         "adapter the last round left and starts from it).",
                         flags=("--prefer-rounds",), ge=1)
    learning_rate: float = option(5e-5, "the stage's learning rate (constant, AdamW)",
                                  flag=False, gt=0)
    epochs: int = option(2, "passes over the pairs per round", flag=False, ge=1)
    grad_accum: int = option(4, "pairs per optimizer step (per process)", flag=False, ge=1)
    max_new_tokens: int = option(64, "tokens at most in a self-play reply", flag=False, ge=1)
    history_turns: int = option(12, "turns of context before each pair's reply", flag=False,
                                ge=1)


class TrainConfig(Options):
    """Everything that decides how a run is made. Each field is a recipe key; the ones marked
    flag=False are set in recipes only (they were never flags)."""

    model: str = option("smollm2-135m", "embedded name, local HF folder, .gguf file or hub id")
    method: Literal["lora", "qlora", "full"] = option("lora", "what is trained")
    train_on: str = option("me", "whose messages carry loss: me, all, or NAME,NAME")
    max_length: int = option(1024, "tokens per training window", ge=32)
    micro_batch_size: int = option(8, "windows per device per step", ge=1)
    grad_accum: int = option(1, "micro batches per optimizer step", ge=1)
    epochs: float = option(3.0, "passes over the training windows", gt=0)
    max_steps: int = option(-1, "stop after this many optimizer steps (-1: epochs decide)")
    learning_rate: float = option(2e-4, "peak learning rate (cosine schedule)", gt=0)
    warmup_ratio: float = option(0.05, "share of steps spent warming up", flag=False, ge=0,
                                 le=0.5)
    weight_decay: float = option(0.0, "AdamW weight decay", flag=False, ge=0)
    lora_r: int = option(16, "LoRA rank", ge=1)
    lora_alpha: int = option(32, "LoRA scale numerator; usually 2 x rank", flag=False, ge=1)
    lora_dropout: float = option(0.05, "dropout on LoRA inputs", flag=False, ge=0, lt=1)
    use_rslora: bool = option(False, "rank-stabilised LoRA scaling (alpha / sqrt(r))",
                              flag=False)
    target_modules: str = option("all-linear", "LoRA targets: all-linear or a comma list",
                                 flag=False)
    batching: Literal["grouped", "packed", "padded"] = option(
        "grouped", "grouped: length-bucketed padded batches (fast on CPU); packed: padding-free "
        "rows with per-conversation positions (fast with FlashAttention); padded: plain random "
        "batches")
    precision: PrecisionWord = precision_option("weights and compute")
    gradient_checkpointing: bool = option(False, "recompute activations to save memory")
    compile: bool = option(False, "torch.compile the model (pays off on long runs)", flag=False)
    fsdp: bool = option(False, "shard full fine-tuning over processes with FSDP2")
    nproc: int = option(1, "processes to launch (torchrun) when run as `doppel train`", ge=1)
    memory_share: float = option(
        0.0, "share of training windows that open with memories (from strictly earlier "
        "conversations in their scope, doppel.memory) so the model learns to use them", ge=0,
        le=1)
    prefer: PreferConfig = PreferConfig()  # the recipe's `prefer:` block (train --prefer)
    seed: int = option(0, "seed for weights init, data order and dropout")
    save_steps: int = option(200, "checkpoint every N optimizer steps", ge=1)
    logging_steps: int = option(5, "log loss and throughput every N steps", ge=1)
    val_max_windows: int = option(256, "cap on validation windows per evaluation", flag=False,
                                  ge=1)
    expected_memory: str = option("", "documentation: expected peak memory per device",
                                  flag=False)
    expected_time: str = option("", "documentation: expected wall time", flag=False)

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
    given = {key: value for key, value in overrides.items() if value is not None}
    merged = {**values, **given}
    for key, value in given.items():  # a flag of a block (--prefer-beta) keeps its other keys
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            merged[key] = {**values[key], **value}
    return build(TrainConfig, merged, source, flags=given)
