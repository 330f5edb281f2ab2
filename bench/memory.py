"""Is `doppel train --dry-run`'s memory estimate honest? Estimate against measured peak, per device.

Usage: python bench/memory.py [--dir /tmp/doppel-bench-memory] [--steps 2]
                              [--micro-batch-size N] [--write-docs]

Each row is one `doppel train` run, as a user types it, on a dataset of long conversations (every
training window is max_length tokens long, so every batch is the worst case the estimate plans
for): the cpu-demo recipe (LoRA, bf16 weights), cpu-full (full fine-tuning, fp32) and cpu-full
sharded with FSDP2 over 2 processes. The run's summary holds both numbers: `memory_estimate_gb`
(what --dry-run prints, computed from the same plan) and `peak_memory_mb` (the process's peak
RSS on a CPU, rank 0's under FSDP). Goal: within 30%. --micro-batch-size overrides the recipes'
(the estimate follows it), for machines with less memory to spare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
MARK = "<!-- bench/memory.py table -->"
END = "<!-- end bench/memory.py table -->"
ROWS = {
    "cpu-demo (LoRA, bf16 weights)": ["--recipe", "cpu-demo"],
    "cpu-full (full, fp32)": ["--recipe", "cpu-full"],
    "cpu-full --fsdp --nproc 2 (per process)": ["--recipe", "cpu-full", "--fsdp", "--nproc", "2"],
}


def long_conversations(folder: Path) -> Path:
    """A dataset folder whose training conversations each fill many 512-token windows."""
    from doppel.data.dataset import CONVERSATIONS, MANIFEST, SCHEMA_VERSION

    folder.mkdir(parents=True, exist_ok=True)
    people = [("user1", "Alex"), ("user2", "Sam")]
    lines = ["so what did you think of the plan for saturday, honestly",
             "i think we should leave early, the traffic is awful after ten",
             "lol yes and bring the big umbrella this time please"]
    rows, t = [], 1_700_000_000.0
    for index in range(12):
        messages = []
        for turn in range(240):
            t += 30
            speaker = people[turn % 2]
            messages.append({"speaker_id": speaker[0], "speaker": speaker[1], "time": t,
                             "text": f"{lines[turn % 3]} ({index}.{turn})"})
        split = "val" if index == 11 else "train"
        rows.append({"id": f"user2-{index:04d}", "split": split, "messages": messages,
                     "chat": {"id": "user2", "name": "Sam", "type": "personal_chat"}})
    (folder / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = {"schema_version": SCHEMA_VERSION, "me": {"id": "user1", "name": "Alex"},
                "speakers": {i: {"name": n, "messages": 0, "chats": 1} for i, n in people},
                "fingerprint": "bench-memory"}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def measure(name: str, flags: list[str], data: Path, out: Path, args) -> dict:
    argv = [sys.executable, "-m", "doppel", "train", str(data), "-o", str(out), "--force",
            *flags, "--max-steps", str(args.steps), "--save-steps", "1000"]
    if args.micro_batch_size:
        argv += ["--micro-batch-size", str(args.micro_batch_size)]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["summary"]
    recipe = yaml_of(out)
    return {"name": name, "processes": summary["processes"],
            "batch": f"{recipe['micro_batch_size']} x {recipe['max_length']}",
            "estimate_gb": summary["memory_estimate_gb"],
            "peak_gb": round(summary["peak_memory_mb"] / 1024, 2),
            "wall_s": round(time.perf_counter() - started, 1), "load": round(load, 1)}


def yaml_of(run: Path) -> dict:
    import yaml

    return yaml.safe_load((run / "recipe.yaml").read_text())


def table(rows: list[dict]) -> str:
    lines = ["| run | processes | micro batch x max_length | estimate GB | measured peak GB "
             "| estimate / peak | wall s | load |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['processes']} | {r['batch']} | {r['estimate_gb']:.2f} "
                     f"| {r['peak_gb']:.2f} | {r['estimate_gb'] / r['peak_gb']:.2f} "
                     f"| {r['wall_s']} | {r['load']} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    block = f"{MARK}\n{text}\n{END}"
    if MARK in docs:
        head, rest = docs.split(MARK, 1)
        docs = head + block + rest.split(END, 1)[1]
    else:
        docs += f"\n## memory\n\n{block}\n"
    DOCS.write_text(docs, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "doppel-bench-memory")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--micro-batch-size", type=int)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    data = long_conversations(args.dir / "data")
    rows = []
    for index, name in enumerate(args.rows):
        rows.append(measure(name, ROWS[name], data, args.dir / f"run{index}", args))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = (f"`python {' '.join(sys.argv)}` on {os.cpu_count()} cores; peak = the process's "
            f"peak RSS (rank 0's under FSDP); estimate = what `--dry-run` prints for the same "
            f"plan; load = 1-minute load average at the start of the row.\n\n{table(rows)}")
    print(text)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
