"""`doppel train`: dataset folder + config -> run folder, on the Hugging Face Trainer.

LoRA/QLoRA through PEFT; full fine-tuning sharded with FSDP2 (per decoder layer) through
accelerate when launched on several processes. The same code runs on a 2-core CPU (gloo) and on
GPUs (NCCL, bf16).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from doppel import runs
from doppel.atomic import atomic_file
from doppel.chatformat import ChatEncoder
from doppel.data.dataset import Dataset, load_dataset
from doppel.errors import DoppelError
from doppel.hardware import estimate_memory, has_cuda, rank, use_bf16, world_size
from doppel.models import load_tokenizer, resolve_model
from doppel.train.config import TrainConfig
from doppel.train.data import WindowDataset, build_windows, trained_speakers

CHECKPOINTS = "checkpoints"


@dataclass
class Plan:
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
            "processes": self.processes,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "precision": "bf16" if self.bf16 else "fp32",
        }


def plan_run(dataset_dir: Path, config: TrainConfig) -> Plan:
    """Resolve the model and tokenise the data: everything but loading weights."""
    dataset = load_dataset(dataset_dir)
    if config.method == "qlora" and not has_cuda():
        raise DoppelError(
            "qlora needs a CUDA GPU (bitsandbytes 4-bit); on this machine use --method lora"
        )
    model_dir = resolve_model(config.model)
    tokenizer = load_tokenizer(model_dir)
    trained = trained_speakers(config.train_on, dataset)
    encoder = ChatEncoder(tokenizer)
    train = build_windows(dataset, encoder, trained, config.max_length, "train")
    if not train.examples:
        who = ", ".join(sorted(trained)) if trained else "anyone"
        raise DoppelError(f"no training conversation contains a message by {who}; check --train-on")
    val = build_windows(dataset, encoder, trained, config.max_length, "val")
    processes = world_size()
    per_step = config.micro_batch_size * config.grad_accum * processes
    steps_per_epoch = max(1, -(-len(train.examples) // per_step))
    total = (
        config.max_steps if config.max_steps > 0 else int(steps_per_epoch * config.epochs + 0.999)
    )
    return Plan(
        config=config,
        dataset=dataset,
        model_dir=model_dir,
        trained=trained,
        train=WindowDataset(train.examples),
        val=WindowDataset(val.examples[: config.val_max_windows]),
        train_tokens=train.stats.tokens,
        trained_tokens=train.stats.trained_tokens,
        truncated=train.stats.truncated_messages,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        processes=processes,
        bf16=use_bf16(config.precision),
        tokenizer=tokenizer,
    )


def memory_estimate(plan: Plan):
    """Count parameters on the meta device (no weights read) and estimate memory per device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_config = AutoConfig.from_pretrained(plan.model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    lora = sum(plan.config.lora_r * (m.in_features + m.out_features) for m in linear[:-1])
    text = model_config.get_text_config()
    return estimate_memory(
        plan.config,
        n_params,
        text.hidden_size,
        text.num_hidden_layers,
        text.vocab_size,
        lora,
        plan.bf16,
        plan.processes,
    )


def complete_checkpoints(out_dir: Path) -> list[Path]:
    """Checkpoints whose last file (trainer_state.json, written after weights, optimizer and RNG
    state) exists, oldest first: a checkpoint cut short by a kill is never resumed from."""
    found = [
        p
        for p in (Path(out_dir) / CHECKPOINTS).glob("checkpoint-*")
        if (p / "trainer_state.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def prepare_run_dir(out_dir: Path, resume: bool, force: bool) -> Path | None:
    """The checkpoint to resume from, after checking the folder may be (re)used."""
    out_dir = Path(out_dir)
    if resume:
        checkpoints = complete_checkpoints(out_dir)
        if not checkpoints:
            raise DoppelError(
                f"nothing to resume in {out_dir}: no complete checkpoint; start without --resume"
            )
        return checkpoints[-1]
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise DoppelError(
                f"{out_dir} already exists; pass --resume to continue it or --force to replace it"
            )
        if rank() == 0:
            shutil.rmtree(out_dir)
    return None


def train(
    dataset_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    resume: bool = False,
    force: bool = False,
    after_train=None,
) -> Path:
    """Train and write the run folder; returns its path."""
    plan = plan_run(dataset_dir, config)
    checkpoint = prepare_run_dir(out_dir, resume, force)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank() == 0:
        with atomic_file(out_dir / "recipe.yaml") as handle:
            handle.write(config.to_yaml())
        trim_metrics(
            out_dir / runs.METRICS, int(checkpoint.name.split("-")[-1]) if checkpoint else 0
        )
    from doppel.train.loop import run_trainer

    started = time.perf_counter()
    result = run_trainer(plan, out_dir, checkpoint, after_train)
    if rank() == 0:
        write_run_folder(plan, out_dir, result, time.perf_counter() - started)
    _leave_process_group()
    return out_dir


def _leave_process_group() -> None:
    """Wait for rank 0's files, then close the group: a gloo process that exits with its group
    still open can abort ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def trim_metrics(path: Path, last_step: int) -> None:
    """Forget metrics logged after the checkpoint a run resumes from (they will be logged again)."""
    if not path.is_file():
        return
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    kept = [r for r in rows if "summary" not in r and r.get("step", 0) <= last_step]
    with atomic_file(path) as handle:
        handle.writelines(json.dumps(r) + "\n" for r in kept)


def write_run_folder(plan: Plan, out_dir: Path, result: dict, wall_s: float) -> None:
    """run.json, the final metrics summary and the loss plot, next to the saved weights."""
    from doppel.train.plots import plot_loss

    summary = {**plan.summary(), **result, "wall_s": round(wall_s, 1)}
    with open(out_dir / runs.METRICS, "a", encoding="utf-8") as metrics:
        metrics.write(json.dumps({"summary": summary}) + "\n")
    plot_loss(runs.read_metrics(out_dir), out_dir / "loss.png")
    info = runs.RunInfo(
        base_model=plan.config.model,
        method=plan.config.method,
        me={"id": plan.dataset.me_id, "name": plan.dataset.me_name},
        speakers=sorted(set(plan.dataset.speakers.values())),
        trained_speakers=sorted(plan.trained)
        if plan.trained
        else sorted(set(plan.dataset.speakers.values())),
        max_length=plan.config.max_length,
        dataset={
            "path": str(Path(plan.dataset.path).resolve()),
            "fingerprint": plan.dataset.fingerprint,
        },
    )
    with atomic_file(out_dir / runs.RUN_INFO) as handle:
        json.dump(info.to_json(), handle, indent=2, ensure_ascii=False)
