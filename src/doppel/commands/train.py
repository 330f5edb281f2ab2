"""`doppel train DATASET_DIR -o RUN_DIR`: fine-tune a model on a prepared dataset."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from doppel.options import OptionFlags, command_from_options
from doppel.train.config import TrainConfig
from doppel.train.options import TrainCommand


@command_from_options
def command(target: TrainCommand, overrides: OptionFlags[TrainConfig] = None) -> None:
    """Fine-tune a model on a dataset folder (LoRA, QLoRA or full with FSDP) into a run folder."""
    from doppel.train import distributed
    from doppel.train.config import load_config

    dataset_dir, output, dry_run = target.dataset_dir, target.output, target.dry_run
    if target.prefer or target.from_run or target.votes or "prefer" in overrides:
        _prefer(target, overrides)
        return
    if not dry_run:
        distributed.start()  # under torchrun: from here on, an error on any rank ends them all
    config = distributed.on_every_rank(lambda: load_config(target.recipe, overrides))
    if config.nproc > 1 and not distributed.launched() and not dry_run:
        _relaunch(config.nproc)
    if dry_run:
        _print_plan(dataset_dir, config)
        return
    from doppel.train.run import train

    run_dir = train(dataset_dir, output, config, resume=target.resume,
                    force=target.force)
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(
            f"run folder: {run_dir}\nnext: doppel chat {run_dir}   |   "
            f"doppel eval {run_dir} --data {dataset_dir} -o EVAL_DIR"
        )


# the flags a preference stage reads (its own block's keys, by the same names, or as they are);
# any other training flag shapes a likelihood run, not this stage, and is refused
STAGE_FLAGS = ("learning_rate", "epochs", "grad_accum")  # set the prefer: block's keys
SHARED_FLAGS = ("max_steps", "max_length", "seed", "nproc")  # read as they are


def _prefer(target: TrainCommand, overrides: dict) -> None:
    """--prefer --from RUN [--votes FILE]: the preference stage (train/prefer.py)."""
    from doppel.errors import DoppelError
    from doppel.options import flag_of
    from doppel.train import distributed
    from doppel.train.config import load_config
    from doppel.train.prefer import prefer

    if not target.prefer:
        given = [*(["--from"] if target.from_run else []), *(["--votes"] if target.votes else []),
                 *(flag_of(TrainConfig, ("prefer", key)) for key in overrides.get("prefer", {}))]
        raise DoppelError(f"{given[0]} goes with --prefer (the preference stage)")
    if target.from_run is None:
        raise DoppelError("--prefer needs --from RUN_DIR: the LoRA run it starts from")
    if target.resume or target.dry_run:
        raise DoppelError("--prefer runs in one go: no --resume or --dry-run")
    other = [key for key in overrides if key not in (*STAGE_FLAGS, *SHARED_FLAGS, "prefer")]
    if other:
        raise DoppelError(
            f"{flag_of(TrainConfig, (other[0],))} does not apply to --prefer (the stage trains "
            "the run's adapter as it is); it reads the recipe's prefer: block, the --prefer-* "
            "flags, --learning-rate, --epochs, --grad-accum, --max-steps, --max-length, --seed "
            "and --nproc")
    stage = {**overrides.get("prefer", {}),
             **{key: overrides[key] for key in STAGE_FLAGS if key in overrides}}
    given = {**{key: overrides[key] for key in SHARED_FLAGS if key in overrides},
             **({"prefer": stage} if stage else {})}
    run_recipe = Path(target.from_run) / "recipe.yaml"
    recipe = target.recipe or (str(run_recipe) if run_recipe.is_file() else None)
    distributed.start()
    config = distributed.on_every_rank(lambda: load_config(recipe, given))
    if config.nproc > 1 and not distributed.launched():
        _relaunch(config.nproc)
    run_dir = prefer(target.dataset_dir, target.from_run, target.output, config,
                     votes=target.votes, force=target.force, say=_on_rank_zero(typer.echo))
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"run folder: {run_dir}\nnext: doppel eval {run_dir} {target.from_run} "
                   f"--data {target.dataset_dir} -o EVAL_DIR")


def _on_rank_zero(say):
    return say if int(os.environ.get("RANK", "0")) == 0 else (lambda *_: None)


def _relaunch(nproc: int) -> None:
    """`doppel train --nproc N` is `torchrun --standalone --nproc_per_node N -m doppel train ...`,
    launched from here so that a user error on the ranks (printed there, once) ends this command
    with exit code 2 rather than torchrun's stack dump."""
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args, skip = [], False
    for arg in sys.argv[1:]:
        if not skip and arg != "--nproc" and not arg.startswith("--nproc="):
            args.append(arg)
        skip = arg == "--nproc"
    # torchrun's default (one thread a process, with a warning) starves a few processes
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (cores or 1) // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", "doppel", *args]))
    except ChildFailedError as failed:
        codes = {failure.exitcode for failure in failed.failures.values()}
        raise typer.Exit(2 if 2 in codes else 1) from None
    raise typer.Exit(0)


def _print_plan(dataset_dir: Path, config: TrainConfig) -> None:
    from rich.console import Console
    from rich.table import Table

    from doppel.train.plan import memory_estimate, plan_run

    plan = plan_run(dataset_dir, config)
    console = Console()
    console.print("[bold]resolved config[/]")
    console.print(config.to_yaml(), highlight=False)
    table = Table(title="plan", show_header=False)
    for key, value in plan.summary().items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    estimate = memory_estimate(plan)
    table.add_row("parameters", f"{estimate.params:,}")
    table.add_row("trainable parameters (est.)", f"{estimate.trainable:,}")
    from doppel.hardware import has_cuda

    here = "GPU" if has_cuda() else "CPU process"
    table.add_row(f"memory per device (est., {here})", _memory_line(estimate))
    if not has_cuda():  # planning a GPU run from a machine without one
        table.add_row("memory per CUDA GPU (est.)", _memory_line(memory_estimate(plan, cuda=True)))
    if config.expected_memory or config.expected_time:
        table.add_row("recipe expects", f"{config.expected_memory}; {config.expected_time}")
    console.print(table)


def _memory_line(estimate) -> str:
    return (
        f"{estimate.total_gb:.1f} GB = weights {estimate.weights_gb:.1f} + grads/optimizer "
        f"{estimate.optimizer_gb:.1f} + activations {estimate.activations_gb:.1f}"
        + (f" + runtime {estimate.runtime_gb:.1f}" if estimate.runtime_gb else "")
    )
