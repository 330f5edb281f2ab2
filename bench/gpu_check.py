"""The first thing to run whenever a GPU is at hand: does doppel's big-model path work here, how
fast, and does the memory estimate hold? One table, in under 10 minutes on one CUDA card.

Usage: make gpu-check                                   # = python bench/gpu_check.py
       python3 bench/gpu_check.py --offline             # a node with no network, no venv, no make
       python bench/gpu_check.py --out /tmp/gpu-check   # folder for runs, gpu.json, check.json
       python bench/gpu_check.py --device cpu --tiny [--model DIR]   # the same steps on a CPU

Parts, each in its own process with a hard timeout (a part that fails or hangs leaves a row
saying so, and the rest still run), as a user types them:
1. the bundled sample export -> `doppel prepare` -> a dataset;
2. --offline: bench/offline_models.py, SmolLM2-135M's shape with random weights and a tokenizer
   trained on the sample (no model package, nothing from a hub); the runs below train it;
3. bench/gpu.py, one process per case: tokens/s, MFU and peak memory of LoRA and full
   fine-tuning (135M and Mistral-7B shapes, random weights);
4. `doppel train --method lora` and `--method qlora` (bitsandbytes NF4) of a small model
   (the embedded SmolLM2-135M unless --model or --offline);
5. `torchrun --nproc_per_node 1 -m doppel train --recipe cpu-full --fsdp`: the FSDP2 wiring on
   one process (NCCL on a GPU, gloo on a CPU).
Every process runs with this interpreter (sys.executable): no venv, nothing installed. Each
training row shows tokens/s, MFU (6N), the peak memory per device (torch.cuda.max_memory_allocated
on a GPU) and what `--dry-run` estimated. Exit code 1 when a part failed. --tiny: tiny shapes
and a few short steps; --offline also sets the Hugging Face libraries offline.
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
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# hard timeout per part on a GPU, seconds, each cut to what is left of --budget-s; x5 on a CPU
TIMEOUT_S = {"prepare": 45, "models": 60, "135m-lora": 40, "135m-full": 40, "7b-lora": 70,
             "7b-full": 90, "lora": 45, "qlora": 45, "fsdp": 60}


@dataclass
class Row:
    step: str
    status: str = "ok"
    wall_s: float = 0.0
    steps: int = 0
    tokens_per_s: float = 0.0
    mfu: float | None = None
    peak_memory_gb: float = 0.0
    estimate_gb: float = 0.0
    loss: str = ""
    base_weights: str = ""
    sharding: str = ""


def _run(argv: list[str], timeout_s: float) -> tuple[str, float, str]:
    """(status, wall seconds, the tail of stderr) of one command, killed after timeout_s."""
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "COLUMNS": "200"})
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:.0f} s", time.perf_counter() - started, ""
    wall = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1][:120]
        return f"failed ({done.returncode}): {last}", wall, done.stderr[-3000:]
    return "ok", wall, ""


def _training_row(name: str, run_dir: Path, status: str, wall: float, mfu_per_token: float
                  ) -> Row:
    row = Row(name, status, round(wall, 1))
    metrics = run_dir / "metrics.jsonl"
    if status != "ok" or not metrics.is_file():
        return row
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    summary = rows[-1]["summary"]
    losses = [r["loss"] for r in rows if "loss" in r]
    row.steps, row.tokens_per_s = summary["steps"], summary["tokens_per_s"]
    row.mfu = round(mfu_per_token * row.tokens_per_s, 6) if mfu_per_token else None
    row.peak_memory_gb = round(summary["peak_memory_mb"] / 1024, 2)
    row.estimate_gb = summary.get("memory_estimate_gb", 0.0)
    row.base_weights = summary.get("base_weights", "")
    row.sharding = summary.get("sharding", "")
    row.loss = f"{losses[0]:.3f} -> {losses[-1]:.3f}" if losses else ""
    return row


def training_commands(args, data: Path, out: Path) -> dict[str, tuple[str, list[str]]]:
    """Row name -> (timeout key, argv) of the doppel runs."""
    steps, length, batch = ("3", "128", "2") if args.tiny else ("30", "512", "8")
    common = ["--model", str(args.model), "--max-steps", steps, "--max-length", length,
              "--micro-batch-size", batch, "--logging-steps", "1", "--save-steps", "1000",
              "--precision", "auto", "--force"]
    return {
        "lora": ("lora", [*DOPPEL, "train", str(data), "-o", str(out / "lora"),
                          "--method", "lora", *common]),
        "qlora": ("qlora", [*DOPPEL, "train", str(data), "-o", str(out / "qlora"),
                            "--method", "qlora", *common]),
        "fsdp2 full, 1 process": ("fsdp", [*TORCHRUN, "--nproc_per_node", "1", "-m", "doppel",
                                           "train", str(data), "-o", str(out / "fsdp"),
                                           "--recipe", "cpu-full", "--fsdp", *common]),
    }


def gpu_rows(args, timeout) -> list[Row]:
    """bench/gpu.py, one process per case, so a hung or crashed case costs only its own row."""
    rows = []
    for case in ("135m-lora", "135m-full", "7b-lora", "7b-full"):
        report = args.out / f"gpu-{case}.json"
        argv = [sys.executable, str(BENCH / "gpu.py"), "--out", str(report), "--cases", case,
                "--device", args.device, "--model-135m", str(args.model)]
        if args.tiny:
            argv += ["--tiny", "--peak-tflops", "1"]
        if args.steps:
            argv += ["--steps", str(args.steps), "--warmup", "2"]
        status, wall, _ = _run(argv, timeout(case))
        row = Row(f"bench/gpu.py {case}", status, round(wall, 1))
        if status == "ok":
            [result] = json.loads(report.read_text())["results"]
            row.status, row.steps = result["status"], result["timed_steps"]
            row.tokens_per_s, row.mfu = result["tokens_per_s"], result["mfu"]
            row.peak_memory_gb = result["peak_memory_gb"]
            row.loss = f"{result['losses'][0]:.3f} -> {result['losses'][-1]:.3f}" \
                if result["losses"] else ""
            row.base_weights = result["weights"]
        rows.append(row)
    return rows


def mfu_per_token(model: str, peak: float | None) -> float:
    """6 N / peak FLOP/s (N: parameters that do matmuls), from the model's config on the meta
    device; 0 when unknown."""
    if not peak:
        return 0.0
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        from doppel.models import resolve_model

        config = AutoConfig.from_pretrained(resolve_model(model))
        with torch.device("meta"):
            net = AutoModelForCausalLM.from_config(config)
    except Exception:  # the check goes on without MFU for these rows
        return 0.0
    total = sum(p.numel() for p in net.parameters())
    embedding = net.get_input_embeddings().weight
    tied = net.get_output_embeddings().weight is embedding
    return 6 * (total - (0 if tied else embedding.numel())) / (peak * 1e12)


def prepare_rows(args, timeout) -> tuple[list[Row], Path | None]:
    """The sample export, its dataset and, offline, the random-weight model trained below."""
    out, rows = args.out, []
    started = time.perf_counter()
    status, _, _ = _run([*DOPPEL, "sample-export", str(out / "export"), "--force"],
                        timeout("prepare"))
    if status == "ok":
        status, _, _ = _run([*DOPPEL, "prepare", str(out / "export" / "result.json"), "-o",
                             str(out / "data"), "--force", "-q"], timeout("prepare"))
    rows.append(Row("sample export -> doppel prepare", status,
                    round(time.perf_counter() - started, 1)))
    data = out / "data" if status == "ok" else None
    if args.offline:
        argv = [sys.executable, str(BENCH / "offline_models.py"),
                str(out / "export" / "result.json"), "--out", str(out / "models")]
        status, wall, _ = ("skipped: no export", 0.0, "") if data is None else _run(
            [*argv, *(["--tiny"] if args.tiny else [])], timeout("models"))
        rows.append(Row("random-weight SmolLM2-135M shape + tokenizer", status, round(wall, 1)))
        args.model = out / "models" / "smollm2-135m-shape"
        if status != "ok":
            data = None
    return rows, data


def run_checks(args) -> list[Row]:
    factor = 1.0 if args.device == "cuda" else 5.0  # a CPU run checks logic, and may be shared
    deadline = time.perf_counter() + args.budget_s * factor

    def timeout(part: str) -> float:
        """The part's own limit, cut to what is left of the whole check's budget."""
        return max(1.0, min(TIMEOUT_S[part] * factor, deadline - time.perf_counter()))

    rows, data = prepare_rows(args, timeout)
    rows += gpu_rows(args, timeout)
    sys.path.insert(0, str(BENCH))
    from gpu import peak_tflops

    peak = peak_tflops(args.device_name, 1.0 if args.tiny else None)
    per_token = mfu_per_token(str(args.model), peak)
    for name, (part, argv) in training_commands(args, data or args.out, args.out).items():
        if data is None:
            rows.append(Row(name, "skipped: no dataset or model"))
            continue
        status, wall, tail = _run(argv, timeout(part))
        if tail:
            print(f"--- {name} stderr (tail)\n{tail}", file=sys.stderr)
        rows.append(_training_row(name, Path(argv[argv.index("-o") + 1]), status, wall,
                                  per_token))
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| step | status | wall s | steps | tokens/s | MFU (6N) | peak memory GB "
             "| estimate GB | weights | sharding | loss first -> last |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        mfu = f"{r.mfu:.1%}" if r.mfu is not None else "-"
        lines.append(f"| {r.step} | {r.status} | {r.wall_s:,.1f} | {r.steps or '-'} "
                     f"| {r.tokens_per_s or '-'} | {mfu} | {r.peak_memory_gb or '-'} "
                     f"| {r.estimate_gb or '-'} | {r.base_weights or '-'} | {r.sharding or '-'} "
                     f"| {r.loss or '-'} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(tempfile.gettempdir()) / "doppel-gpu-check")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, a few short steps")
    parser.add_argument("--offline", action="store_true",
                        help="no network, no model package: random weights at the real shapes")
    parser.add_argument("--model", default="smollm2-135m", help="model the doppel runs train")
    parser.add_argument("--steps", type=int, help="bench/gpu.py's timed steps per case")
    parser.add_argument("--budget-s", type=float, default=480,
                        help="the whole check's hard limit on a GPU (x5 on a CPU), seconds")
    args = parser.parse_args(argv)
    if args.offline and args.steps is None and not args.tiny:
        args.steps = 5  # the 7B cases within their timeouts on a short lease
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.offline:
        os.environ.update(OFFLINE_ENV)  # every part, and the libraries in this process
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu_check.py needs a CUDA GPU and none is visible; check the logic here "
              "with --device cpu --tiny", file=sys.stderr)
        sys.exit(2)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the doppel runs follow --device too
    args.out.mkdir(parents=True, exist_ok=True)
    args.device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    started = time.perf_counter()
    rows = run_checks(args)
    report = {"device": args.device_name, "tiny": args.tiny, "offline": args.offline,
              "model": str(args.model), "python": sys.executable, "torch": torch.__version__,
              "wall_s": round(time.perf_counter() - started, 1),
              "rows": [asdict(r) for r in rows]}
    (args.out / "check.json").write_text(json.dumps(report, indent=2))
    print(f"doppel gpu-check on {args.device_name}{' (offline)' if args.offline else ''}, "
          f"torch {torch.__version__}, {report['wall_s']} s ({args.out})")
    print(table(rows))
    sys.exit(0 if all(r.status == "ok" for r in rows) else 1)


if __name__ == "__main__":
    main()
