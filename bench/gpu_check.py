"""The first thing to run whenever a GPU is at hand: does doppel's big-model path work here, how
fast, and does the memory estimate hold? One table, in under 10 minutes on one CUDA card.

Usage: make gpu-check                                   # = python bench/gpu_check.py
       python bench/gpu_check.py --out /tmp/gpu-check   # folder for runs, gpu.json, check.json
       python bench/gpu_check.py --device cpu --tiny [--model DIR]   # the same steps on a CPU

Steps, each in its own process, as a user types them:
1. bench/gpu.py: tokens/s, MFU and peak memory of LoRA and full fine-tuning (135M and 7B shapes);
2. the bundled sample export -> `doppel prepare` -> a dataset;
3. `doppel train --method lora` and `--method qlora` (bitsandbytes NF4) of a small model
   (the embedded SmolLM2-135M unless --model);
4. `torchrun --nproc_per_node 1 -m doppel train --recipe cpu-full --fsdp`: the FSDP2 wiring on
   one process (NCCL on a GPU, gloo on a CPU).
Each training row shows tokens/s, the peak memory per device and what `--dry-run` estimated.
Exit code 1 when a step failed. --tiny: bench/gpu.py's tiny shapes and a few short steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DOPPEL = [sys.executable, "-m", "doppel"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


@dataclass
class Row:
    step: str
    status: str = "ok"
    wall_s: float = 0.0
    steps: int = 0
    tokens_per_s: float = 0.0
    peak_memory_gb: float = 0.0
    estimate_gb: float = 0.0
    loss: str = ""
    base_weights: str = ""
    sharding: str = ""


def _run(argv: list[str], timeout_s: int) -> tuple[str, float, str]:
    """(status, wall seconds, the tail of stderr) of one command."""
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "COLUMNS": "200"})
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s} s", time.perf_counter() - started, ""
    wall = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1][:120]
        return f"failed ({done.returncode}): {last}", wall, done.stderr[-3000:]
    return "ok", wall, ""


def _training_row(name: str, run_dir: Path, status: str, wall: float) -> Row:
    row = Row(name, status, round(wall, 1))
    metrics = run_dir / "metrics.jsonl"
    if status != "ok" or not metrics.is_file():
        return row
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    summary = rows[-1]["summary"]
    losses = [r["loss"] for r in rows if "loss" in r]
    row.steps, row.tokens_per_s = summary["steps"], summary["tokens_per_s"]
    row.peak_memory_gb = round(summary["peak_memory_mb"] / 1024, 2)
    row.estimate_gb = summary.get("memory_estimate_gb", 0.0)
    row.base_weights = summary.get("base_weights", "")
    row.sharding = summary.get("sharding", "")
    row.loss = f"{losses[0]:.3f} -> {losses[-1]:.3f}" if losses else ""
    return row


def training_commands(args, data: Path, out: Path) -> dict[str, list[str]]:
    steps, length, batch = ("3", "128", "2") if args.tiny else ("30", "512", "8")
    common = ["--model", args.model, "--max-steps", steps, "--max-length", length,
              "--micro-batch-size", batch, "--logging-steps", "1", "--save-steps", "1000",
              "--precision", "auto"]
    return {
        "lora": [*DOPPEL, "train", str(data), "-o", str(out / "lora"), "--method", "lora",
                 *common],
        "qlora": [*DOPPEL, "train", str(data), "-o", str(out / "qlora"), "--method", "qlora",
                  *common],
        "fsdp2 full, 1 process": [*TORCHRUN, "--nproc_per_node", "1", "-m", "doppel", "train",
                                  str(data), "-o", str(out / "fsdp"), "--recipe", "cpu-full",
                                  "--fsdp", *common],
    }


def run_checks(args) -> list[Row]:
    out = args.out
    rows = []
    gpu = [sys.executable, str(BENCH / "gpu.py"), "--out", str(out / "gpu.json")]
    if args.tiny:
        gpu += ["--device", args.device, "--tiny", "--peak-tflops", "1",
                "--cases", "7b-lora", "7b-full"]
    status, wall, _ = _run(gpu, 600)
    rows.append(Row("bench/gpu.py", status, round(wall, 1)))
    data = out / "data"
    status, wall, _ = _run([*DOPPEL, "sample-export", str(out / "export"), "--force"], 120)
    if status == "ok":
        status, wall, _ = _run([*DOPPEL, "prepare", str(out / "export" / "result.json"), "-o",
                                str(data), "--force", "-q"], 300)
    rows.append(Row("sample export -> doppel prepare", status, round(wall, 1)))
    for name, argv in training_commands(args, data, out).items():
        if status.startswith("failed") and not data.is_dir():
            rows.append(Row(name, "skipped: no dataset"))
            continue
        run_status, wall, tail = _run([*argv, "--force"], 600)
        if tail:
            print(f"--- {name} stderr (tail)\n{tail}", file=sys.stderr)
        rows.append(_training_row(name, Path(argv[argv.index("-o") + 1]), run_status, wall))
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| step | status | wall s | steps | tokens/s | peak memory GB | estimate GB "
             "| base weights | sharding | loss first -> last |",
             "|---|---|---:|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.step} | {r.status} | {r.wall_s:,.1f} | {r.steps or '-'} "
                     f"| {r.tokens_per_s or '-'} | {r.peak_memory_gb or '-'} "
                     f"| {r.estimate_gb or '-'} | {r.base_weights or '-'} | {r.sharding or '-'} "
                     f"| {r.loss or '-'} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(tempfile.gettempdir()) / "doppel-gpu-check")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, a few short steps")
    parser.add_argument("--model", default="smollm2-135m", help="model the doppel runs train")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu_check.py needs a CUDA GPU and none is visible; check the logic here "
              "with --device cpu --tiny", file=sys.stderr)
        sys.exit(2)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the doppel runs follow --device too
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = run_checks(args)
    device = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    report = {"device": device, "tiny": args.tiny, "model": args.model,
              "wall_s": round(time.perf_counter() - started, 1),
              "rows": [asdict(r) for r in rows]}
    (args.out / "check.json").write_text(json.dumps(report, indent=2))
    print(f"doppel gpu-check on {device}, {report['wall_s']} s ({args.out})")
    print(table(rows))
    sys.exit(0 if all(r.status == "ok" for r in rows) else 1)


if __name__ == "__main__":
    main()
