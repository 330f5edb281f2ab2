"""Training throughput on this CPU: a reference-style baseline against doppel's default recipe.

Usage: python bench/train.py [--steps 12] [--warmup 2] [--repeats 1] [--dir /tmp/doppel-bench-train]
                             [--configs baseline doppel doppel-fp32 doppel-dropout packed]
                             [--write-docs]

Data: the bundled sample export, prepared with default options (built once in --dir). Every
configuration trains LoRA all-linear r16 alpha 32 on the same windows (max_length 512, micro
batch 8, the cpu-demo recipe) in its own child process, so peak RSS is that process alone:
- baseline: what the reference did: transformers' own Trainer (logits and loss over every
  position), fp32 weights, LoRA dropout 0.05, batches padded to their longest window and grouped
  by transformers' LengthGroupedSampler (train_sampling_strategy="group_by_length");
- doppel: the cpu-demo recipe as shipped: bf16 weights where the CPU has bf16 instructions (no
  autocast), no LoRA dropout, logits only where a label is (train/loss.py), LengthBucketSampler;
- doppel-fp32, doppel-dropout: the default with one choice undone, to split the effects;
- packed: `--batching packed`, one padding-free row per batch (block-diagonal mask through sdpa).
The child composes the functions `doppel train` runs (plan_run, load_base, wrap_lora,
training_arguments, the DoppelTrainer class); the baseline swaps in the HF Trainer. The first
warm-up step of the padded configurations is the batch of the 8 longest windows (the worst case
any sampler can draw), so their peak memory compares; then each sampler's own order follows. It
times the optimizer steps after --warmup untimed ones (wall and process CPU seconds) and counts
real (attention-mask) tokens and padding from the batches the Trainer actually fed the model.
--repeats N runs every configuration N times, interleaved, and keeps each one's fastest run (the
machine may be shared; tokens per CPU-second depend less on what else runs).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdocs import DOCS, write_block

HEADING = "## train"

CONFIGS = {
    "baseline": {"label": "baseline: HF Trainer, fp32, LoRA dropout 0.05, LengthGroupedSampler",
                 "overrides": {"precision": "fp32", "batching": "padded", "lora_dropout": 0.05},
                 "reference": True},
    "doppel": {"label": "doppel default (cpu-demo): bf16 weights, no dropout, labelled logits",
               "overrides": {}, "reference": False},
    "doppel-fp32": {"label": "doppel --precision fp32",
                    "overrides": {"precision": "fp32"}, "reference": False},
    "doppel-dropout": {"label": "doppel --lora-dropout 0.05",
                       "overrides": {"lora_dropout": 0.05}, "reference": False},
    "packed": {"label": "doppel --batching packed: one padding-free row",
               "overrides": {"batching": "packed"}, "reference": False},
}
DEFAULT_CONFIGS = ["baseline", "doppel", "doppel-fp32", "doppel-dropout"]


# ---------------------------------------------------------------- child: one configuration


def _cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _WorstFirst:
    """The batch of the longest windows first (a warm-up step), then the configuration's own
    order: every padded configuration meets the same worst-case batch, so peak memory compares."""

    def __init__(self, sampler, lengths: list[int], batch_size: int) -> None:
        self.sampler = sampler
        self.worst = sorted(range(len(lengths)), key=lengths.__getitem__)[-batch_size:]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.worst) + len(self.sampler)

    def __iter__(self):
        yield from self.worst
        yield from self.sampler


class _Meter:
    """Counts tokens per batch and stamps the end of each optimizer step after the warm-up."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.real = self.slots = self.real_all = self.longest_row = 0
        self.start = self.end = self.cpu_start = self.cpu_end = 0.0

    def batch(self, step: int, inputs: dict) -> None:
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        real = int(mask.sum()) if mask is not None else ids.numel()  # packed rows have no padding
        self.real_all += real
        self.longest_row = max(self.longest_row, ids.shape[1])
        if step >= self.warmup:
            self.real, self.slots = self.real + real, self.slots + ids.numel()

    def step_end(self, step: int) -> None:
        if step == self.warmup:
            self.start, self.cpu_start = time.perf_counter(), _cpu_s()
        self.end, self.cpu_end = time.perf_counter(), _cpu_s()


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so the training phase gets its own peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measured_trainer(base_class, meter: _Meter, worst_first: bool):
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            meter.step_end(state.global_step)

    class MeasuredTrainer(base_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(Clock())

        def _get_train_sampler(self, train_dataset=None):
            sampler = super()._get_train_sampler(train_dataset)
            if not worst_first:
                return sampler
            lengths = [len(example.input_ids) for example in self.train_dataset.examples]
            return _WorstFirst(sampler, lengths, self.args.train_batch_size)

        def training_step(self, model, inputs, num_items_in_batch=None):
            meter.batch(self.state.global_step, inputs)
            return super().training_step(model, inputs, num_items_in_batch)

    return MeasuredTrainer


def _child(name: str, dataset_dir: Path, steps: int, warmup: int) -> None:
    """Runs in the child: train `warmup + steps` optimizer steps, print one JSON line."""
    from transformers import Trainer

    from doppel.train.config import load_config
    from doppel.train.data import WindowDataset, make_collator
    from doppel.train.hf_trainer import _trainer_class, load_base, training_arguments, wrap_lora
    from doppel.train.plan import plan_run

    spec = CONFIGS[name]
    overrides = {"max_steps": warmup + steps, "save_steps": 10_000, "logging_steps": 10_000,
                 **spec["overrides"]}
    config = load_config("cpu-demo", overrides)
    plan = dataclasses.replace(plan_run(dataset_dir, config), val=WindowDataset([]))  # no eval
    model, new_token_ids = load_base(plan)
    model = wrap_lora(model, plan, new_token_ids)
    with tempfile.TemporaryDirectory() as out:
        args = training_arguments(plan, Path(out))
        trainer_class = _trainer_class(config.batching)
        if spec["reference"]:  # transformers' own Trainer: full logits, HF's length grouping
            trainer_class = Trainer
            args.train_sampling_strategy = "group_by_length"
        meter = _Meter(warmup)
        # packed rows of the 8 longest windows (~4,000 tokens) would need a dense 4,000^2 mask
        # per layer through sdpa on CPU: packed runs keep their own random order
        worst_first = config.batching != "packed"
        trainer = _measured_trainer(trainer_class, meter, worst_first)(
            model=model, args=args, train_dataset=plan.train,
            data_collator=make_collator(config.batching, plan.tokenizer.pad_token_id),
        )
        _reset_peak_rss()  # from here on: the training phase's own peak
        trainer.train()
        seen = int(trainer.state.num_input_tokens_seen or 0)
    if seen != meter.real_all:  # our count must match the Trainer's own non-padding count
        raise SystemExit(f"token count {meter.real_all} != Trainer's num_input_tokens_seen {seen}")
    seconds = meter.end - meter.start
    print(json.dumps({
        "name": name, "precision": "bf16" if plan.bf16 else "fp32", "steps": steps,
        "real_tokens": meter.real, "slots": meter.slots, "seconds": seconds,
        "cpu_seconds": meter.cpu_end - meter.cpu_start, "worst_first": worst_first,
        "longest_row": meter.longest_row, "train_peak_rss_mb": _peak_rss_mb(),
    }))


# ---------------------------------------------------------------- parent: run, table, docs


def _sample_dataset(folder: Path) -> Path:
    from doppel.data.options import PrepareOptions
    from doppel.data.pipeline import prepare_dataset
    from doppel.sample import write_sample_export

    dataset = folder / "dataset"
    if not (dataset / "manifest.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        export = write_sample_export(folder / "export", force=True)
        prepare_dataset(export, dataset, PrepareOptions(force=True), progress=False)
    return dataset


def _run_child(name: str, dataset: Path, steps: int, warmup: int) -> dict:
    """One configuration in a fresh process; its own peak RSS comes from os.wait4."""
    cmd = [sys.executable, __file__, "--child", name, "--dataset", str(dataset),
           "--steps", str(steps), "--warmup", str(warmup)]
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status):
            sys.exit(f"{name} failed:\n{err.read()[-3000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    return {**result, "load": load, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime}


def _rate(result: dict) -> float:
    return result["real_tokens"] / result["seconds"]


def _table(results: dict[str, dict]) -> str:
    rows = ["| configuration | real tokens/s | real tokens per CPU-s | padding | timed steps "
            "| longest row | peak RSS MB (process) | peak RSS MB (training) | load avg |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        padding = 1 - r["real_tokens"] / r["slots"]
        rows.append(f"| {CONFIGS[name]['label']} | {_rate(r):,.1f} "
                    f"| {r['real_tokens'] / r['cpu_seconds']:,.1f} "
                    f"| {padding:.1%} | {r['steps']} | {r['longest_row']:,} "
                    f"| {r['peak_rss_mb']:,.0f} | {r['train_peak_rss_mb']:,.0f} "
                    f"| {r['load']:.1f} |")
    return "\n".join(rows)


def _ratios(results: dict[str, dict]) -> str:
    if "baseline" not in results:
        return ""
    base = results["baseline"]
    lines = []
    for name, r in results.items():
        if name != "baseline":
            lines.append(f"{name} / baseline: {_rate(r) / _rate(base):.2f}x real tokens/s, "
                         f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x peak RSS")
    return "\n".join(lines)


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[-1].split("\n", 1)[0].split()
    bf16 = [f for f in ("amx_bf16", "avx512_bf16") if f in flags] or ["no bf16 instructions"]
    return f"{os.cpu_count()} cores, {model} ({', '.join(bf16)}), torch threads 2"


def _measure_all(args) -> list[dict]:
    dataset = _sample_dataset(args.dir)
    results = []
    for repeat in range(args.repeats):
        for name in args.configs:
            result = _run_child(name, dataset, args.steps, args.warmup)
            with open(args.dir / "runs.jsonl", "a", encoding="utf-8") as log:  # every run, kept
                log.write(json.dumps(result) + "\n")
            print(f"run {repeat + 1}: {name}: {_rate(result):,.0f} real tokens/s, peak RSS "
                  f"{result['peak_rss_mb']:,.0f} MB, load {result['load']:.1f}, "
                  f"wall {result['wall_s']:.0f} s", flush=True)
            results.append(result)
    return results


def _best(results: list[dict]) -> dict[str, dict]:
    """Each configuration's fastest run, in the order first seen."""
    best: dict[str, dict] = {}
    for result in results:
        name = result["name"]
        if name not in best or _rate(result) > _rate(best[name]):
            best[name] = result
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed optimizer steps first")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration; best kept")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=DEFAULT_CONFIGS)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench-train"))
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--from-runs", type=Path,
                        help="no training: the table from a runs.jsonl kept by earlier runs")
    parser.add_argument("--child", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dataset, args.steps, args.warmup)
        return
    if args.from_runs:
        runs = [json.loads(line) for line in args.from_runs.read_text().splitlines() if line]
        best = _best([r for r in runs if r["name"] in args.configs and r["steps"] == args.steps])
    else:
        best = _best(_measure_all(args))
    command = (f"python bench/train.py --steps {args.steps} --warmup {args.warmup} --repeats "
               f"{args.repeats} --configs {' '.join(best)} --write-docs")
    block = (f"Machine: {_machine()}; 1-minute load when each kept run started in the last column. "
             f"Command: `{command}` (fastest of {args.repeats} per configuration).\n\n"
             f"{_table(best)}\n\n{_ratios(best)}")
    print(block)
    if args.write_docs:
        write_block(HEADING, "train.py", block)
        print(f"wrote the table to {DOCS}")


if __name__ == "__main__":
    main()
