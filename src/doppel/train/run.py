"""`doppel train`: dataset folder + config -> run folder, on the Hugging Face Trainer.

LoRA/QLoRA through PEFT; full fine-tuning sharded with FSDP2 (per decoder layer) through
accelerate when launched on several processes. The same code runs on a 2-core CPU (gloo) and on
GPUs (NCCL, bf16), on one node or many: every rank plans, rank 0 alone touches the run folder
(train/distributed.py).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from doppel import runs
from doppel.atomic import atomic_file
from doppel.errors import DoppelError
from doppel.hardware import rank
from doppel.train import distributed
from doppel.train.config import TrainConfig
from doppel.train.plan import RunPlan, memory_estimate, plan_run

CHECKPOINTS = "checkpoints"


def complete_checkpoints(out_dir: Path) -> list[Path]:
    """Checkpoints whose last file (trainer_state.json, written after weights, optimizer and RNG
    state) exists, oldest first: a checkpoint cut short by a kill is never resumed from."""
    found = [
        p
        for p in (Path(out_dir) / CHECKPOINTS).glob("checkpoint-*")
        if (p / "trainer_state.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def check_run_dir(out_dir: Path, resume: bool, force: bool) -> Path | None:
    """The checkpoint to resume from, after checking the folder may be (re)used; changes nothing."""
    out_dir = Path(out_dir)
    if resume:
        checkpoints = complete_checkpoints(out_dir)
        if not checkpoints:
            raise DoppelError(
                f"nothing to resume in {out_dir}: no complete checkpoint; start without --resume"
            )
        return checkpoints[-1]
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise DoppelError(
            f"{out_dir} already exists; pass --resume to continue it or --force to replace it"
        )
    return None


def open_run_dir(out_dir: Path, config: TrainConfig, checkpoint: Path | None) -> None:
    """Replace (--force) or create the folder, write the recipe, forget metrics past the
    checkpoint. Runs once, on rank 0."""
    out_dir = Path(out_dir)
    if checkpoint is None and out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_dir / "recipe.yaml") as handle:
        handle.write(config.to_yaml())
    trim_metrics(out_dir / runs.METRICS, int(checkpoint.name.split("-")[-1]) if checkpoint else 0)


def train(
    dataset_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    resume: bool = False,
    force: bool = False,
    after_train=None,
) -> Path:
    """Train and write the run folder; returns its path. Under torchrun, every rank calls this."""
    out_dir = Path(out_dir)
    distributed.start()
    # every rank reads and tokenises the data; rank 0 alone checks the run folder, and nothing
    # is changed on disk until every rank's checks have passed
    plan, checkpoint = distributed.on_every_rank(
        lambda: (plan_run(dataset_dir, config), _checked_on_rank_zero(out_dir, resume, force))
    )
    checkpoint = distributed.on_rank_zero(lambda: _opened(out_dir, config, checkpoint))
    from doppel.train.hf_trainer import run_trainer

    started = time.perf_counter()
    result = run_trainer(plan, out_dir, checkpoint, after_train)
    if rank() == 0:
        write_run_folder(plan, out_dir, result, time.perf_counter() - started)
    distributed.finish()
    return out_dir


def _checked_on_rank_zero(out_dir: Path, resume: bool, force: bool) -> Path | None:
    return check_run_dir(out_dir, resume, force) if rank() == 0 else None


def _opened(out_dir: Path, config: TrainConfig, checkpoint: Path | None) -> Path | None:
    open_run_dir(out_dir, config, checkpoint)
    return checkpoint


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


def write_run_folder(plan: RunPlan, out_dir: Path, result: dict, wall_s: float) -> None:
    """run.json, the final metrics summary and the loss plot, next to the saved weights."""
    from doppel.train.plots import plot_loss

    # what --dry-run promised next to what the run took (bench/memory.py compares them)
    estimate = round(memory_estimate(plan).total_gb, 2)
    summary = {**plan.summary(), **result, "memory_estimate_gb": estimate,
               "wall_s": round(wall_s, 1)}
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
