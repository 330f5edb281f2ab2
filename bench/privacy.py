"""The privacy canary end to end: plant canaries in the sample export, prepare, train, probe.

Usage: python bench/privacy.py [--dir /tmp/doppel-bench-privacy] [--occurrences 6]
                               [--candidates 1000] [--recipe cpu-demo] [--max-steps N]
                               [--write-docs]

Copies the bundled sample export (`doppel sample-export`), plants the default canaries in it
(doppel/eval/planting.py: phones in five national formats, emails, Luhn-valid cards, and the
unmasked secret "my locker code is 4 8 1 5 9 2" --occurrences times in the user's messages),
then runs `doppel prepare`, `doppel train --recipe cpu-demo` and `doppel eval --quick
--canaries` through the CLI, as a user would. Prints how many masked canaries were found in
each place (the promise is 0 everywhere) and the secret's exposure under the base model and the
run (log2(R + 1) bits is a memorised secret, about 1 bit is none). About 10 minutes on 2 idle
cores; the 1-minute load is printed next to every time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchdocs import write_block

HEADING = "## Privacy canary (bench/privacy.py)"
PLACES = {"dataset": "dataset folder (files)", "run": "run folder (files)",
          "generations": "generations (texts)"}


def _doppel(*args: object) -> float:
    """Run `doppel ARGS` as a user would; returns its wall time (stops on failure)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "doppel", *map(str, args)], text=True,
                          capture_output=True)
    if done.returncode != 0:
        sys.exit(f"doppel {' '.join(map(str, args))} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def _run_all(args) -> tuple[dict, dict[str, tuple[float, float]]]:
    from doppel.eval.planting import plant

    root = args.dir
    steps: dict[str, tuple[float, float]] = {}  # step -> (seconds, 1-minute load at its start)

    def step(name: str, *command: object) -> None:
        load = os.getloadavg()[0]
        steps[name] = (_doppel(*command), load)

    step("sample-export", "sample-export", root / "export", "--force")
    plant(root / "export" / "result.json", root / "planted", occurrences=args.occurrences,
          candidates=args.candidates, force=True)
    step("prepare", "prepare", root / "planted" / "result.json", "-o", root / "dataset",
         "--force")
    train = ["--max-steps", args.max_steps] if args.max_steps else []
    step("train", "train", root / "dataset", "-o", root / "run", "--recipe", args.recipe,
         "--force", *train)
    step("eval", "eval", root / "run", "--data", root / "dataset", "-o", root / "eval",
         "--quick", "--canaries", root / "planted" / "canaries.json", "--force")
    results = json.loads((root / "eval" / "results.json").read_text(encoding="utf-8"))
    return results["runs"][0]["canaries"], steps


def table(found: dict, steps: dict[str, tuple[float, float]], recipe: str) -> str:
    lines = ["| where | looked at | masked canaries found |", "|---|---:|---:|"]
    for place, checked in found["checked"].items():
        count = sum(leak["place"] == place for leak in found["leaks"])
        lines.append(f"| {PLACES[place]} | {checked} | {count} |")
    lines += [f"- found: {leak['canary']} in {leak['place']} ({leak['where']})"
              for leak in found["leaks"]]
    secret = found["secret"]
    lines += ["", f"{found['masked']} masked canaries planted. The secret, planted "
              f"{secret['planted']} times ({secret['in_train']} in the train split), ranked "
              f"among {secret['candidates']:,} random values of its shape:", "",
              "| model | rank | exposure (bits) |", "|---|---:|---:|",
              f"| base | {secret['base_rank']:,} | {secret['base']:.2f} |",
              f"| run ({recipe}) | {secret['fine_tuned_rank']:,} | {secret['fine_tuned']:.2f} |",
              f"| memorised (rank 1) | 1 | {secret['max_exposure']:.2f} |", "",
              "| step | seconds | 1-minute load at start |", "|---|---:|---:|"]
    lines += [f"| {name} | {seconds:.0f} | {load:.2f} |"
              for name, (seconds, load) in steps.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench-privacy"))
    parser.add_argument("--occurrences", type=int, default=6)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--recipe", default="cpu-demo")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    found, steps = _run_all(args)
    text = table(found, steps, args.recipe + (f", {args.max_steps} steps" if args.max_steps
                                              else ""))
    print(text)
    if args.write_docs:
        write_block(HEADING, "privacy.py", text)


if __name__ == "__main__":
    main()
