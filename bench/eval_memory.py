"""`doppel eval` with memory on and off on the bundled sample: prepare it, train a cpu-demo run
with memories in a share of its windows, evaluate it (--quick unless --full) and print the memory
section's numbers: the fact test (log-likelihood per token of the fact words, with and without
memory, and recall@k), held-out perplexity and hits@1, each with its paired 95% interval.

Usage: .venv/bin/python bench/eval_memory.py [--steps 33] [--share 0.5] [--full] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cells(row, digits: int = 3) -> str:
    if row is None or row.fine_tuned is None:
        return "n/a"
    change = row.intervals.change if row.intervals else None
    interval = f" [{change[0]:+.{digits}f}, {change[1]:+.{digits}f}]" if change else ""
    return (f"without {row.base:.{digits}f}, with memory {row.fine_tuned:.{digits}f}, "
            f"change {row.fine_tuned - row.base:+.{digits}f}{interval}")


def report(out: Path) -> None:
    from doppel.eval.store import read_results

    run = read_results(out).runs[0]
    found = run.metrics["memory"]
    print(f"memory: {found.state}; memories found for {found.with_memories} of "
          f"{found.contexts} contexts")
    if found.state != "on":
        return
    facts = found.facts
    if facts and facts.turns:
        low, high = facts.recall_interval or (float("nan"), float("nan"))
        print(f"fact test ({facts.turns} turns, {facts.tokens} word tokens): log-likelihood per "
              f"token {_cells(facts)}; recall@{facts.k} {facts.recall:.2f} [{low:.2f}, {high:.2f}]")
    print(f"perplexity (all trained speakers): {_cells(found.overall, 2)}")
    for speaker, row in found.ranking.items():
        print(f"hits@1 {speaker}: {row.note or _cells(row, 2)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=33)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--full", action="store_true", help="eval without --quick")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    from doppel.data.options import PrepareOptions
    from doppel.data.pipeline import prepare_dataset
    from doppel.sample import write_sample_export

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        dataset, run, out = root / "dataset", root / "run", root / "eval"
        if not dataset.exists():
            prepare_dataset(write_sample_export(root / "export"), dataset, PrepareOptions(),
                            progress=False)
        started = time.perf_counter()
        if not run.exists():
            subprocess.run([sys.executable, "-m", "doppel", "train", dataset, "-o", run,
                            "--recipe", "cpu-demo", "--max-steps", str(args.steps),
                            "--memory-share", str(args.share)], check=True,
                           stdout=subprocess.DEVNULL)
            print(f"trained ({args.steps} steps, memory_share {args.share}): "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "doppel", "eval", run, "--data", dataset, "-o", out,
                        "--force", *([] if args.full else ["--quick"])], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"eval: {time.perf_counter() - started:.0f} s", flush=True)
        report(out)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
