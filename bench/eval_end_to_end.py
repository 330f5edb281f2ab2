"""`doppel eval` of one cpu-demo run, before and after, on a realistic-size export.

Usage: python bench/eval_end_to_end.py [--messages 31000] [--steps 33] [--before REF]
                                       [--same-work] [--dir DIR] [--write-docs]

A synthetic Telegram export shaped like the issue's (bench/synth_script.py: six friends, long
scenes, --messages messages) is prepared and trained with the cpu-demo recipe for 33 steps (both
kept in --dir and reused by a rerun); then `doppel eval` runs on it, each time as its own process
exactly as a user types it: once with the code of git ref --before (`git archive`, run from a
temporary folder through PYTHONPATH; the default is the last commit before issue 14's eval work)
and once with this checkout's. --same-work adds a third run of this checkout doing what the old
eval did (every held-out token scored, no ranking test).
Printed: seconds per part (the run and its base model together), the total, the ratio of eval
time to the run's training time (the target: under 0.5), and the headline numbers of the reports
(same data and seed; the precision row says which). The 1-minute load is printed next to every
time: read ratios on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchdocs import write_block

HEADING = "## Eval end to end: one cpu-demo run, a realistic-size export (bench/eval_end_to_end.py)"
ROOT = Path(__file__).resolve().parents[1]
# the run: cpu-demo for 33 steps on its 31k-message export (a TV script)
STEPS = 33
BEFORE = "9d5bc00"  # main just before issue 14's eval changes (fp32, full logits, padded generate)
# what the old eval did: every held-out token scored, no ranking test (it had none)
SAME_WORK = ["--ppl-max-tokens", "0", "--rank-candidates", "0"]
PARTS = ("load", "perplexity", "ranking", "generation", "transcripts", "classifier", "style",
         "attribution", "means", "report")


def _doppel(args: list[str], src: Path) -> float:
    """Run `doppel ARGS` with the package from src; returns wall seconds."""
    env = dict(os.environ, PYTHONPATH=str(src))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "doppel", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _prepare_and_train(folder: Path, messages: int, steps: int) -> tuple[Path, Path, float]:
    """The dataset and the cpu-demo run (made once, reused), and the run's training seconds."""
    from synth_script import write_export

    folder.mkdir(parents=True, exist_ok=True)
    data, run = folder / "data", folder / "run"
    if not (data / "manifest.json").exists():
        write_export(folder / "export.json", messages)
        _doppel(["prepare", str(folder / "export.json"), "-o", str(data), "-q", "--force"],
                ROOT / "src")
    if not (run / "run.json").exists():
        print(f"training the cpu-demo run (load {os.getloadavg()[0]:.1f})", flush=True)
        _doppel(["train", str(data), "-o", str(run), "--recipe", "cpu-demo", "--max-steps",
                 str(steps), "--force"], ROOT / "src")
    summary = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    wall = next(row["summary"]["wall_s"] for row in reversed(summary) if "summary" in row)
    return data, run, float(wall)


def _source_of(ref: str, into: Path) -> Path:
    """The src/ folder of git ref, extracted into a temporary folder."""
    archive = into / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, stdout=out)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _evaluate(name: str, src: Path, run: Path, data: Path, out: Path,
              extra: tuple[str, ...] = ()) -> dict:
    load = os.getloadavg()[0]
    wall = _doppel(["eval", str(run), "--data", str(data), "-o", str(out), "--force", *extra],
                   src)
    results = json.loads((out / "results.json").read_text())
    found = results["runs"][0]
    parts = {p: sum(v for k, v in found["timings"].items() if k.removeprefix("base ") == p)
             for p in PARTS}
    parts["classifier"] += results["timings"].get("classifier", 0.0)
    parts["report"] += results["timings"].get("report", 0.0)
    me = results["dataset"]["me"]
    ranked = found.get("ranking", {}).get(me, {})
    print(f"{name}: {wall:.0f} s (load {load:.1f})", flush=True)
    return {"wall": wall, "load": load, "parts": parts,
            "precision": found["perplexity"].get("precision", "fp32"),
            "ppl": (found["perplexity"]["overall"]["fine_tuned"],
                    found["perplexity"]["overall"]["base"]),
            "hits": (ranked.get("fine_tuned_hits"), ranked.get("base_hits"))}


def _number(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table(rows: dict[str, dict], train_s: float) -> str:
    names = list(rows)
    lines = ["| part (s) | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for part in PARTS:
        lines.append(f"| {part} | " + " | ".join(_number(rows[n]["parts"][part]) for n in names)
                     + " |")
    lines += [
        "| **total (wall)** | " + " | ".join(f"**{rows[n]['wall']:.0f}**" for n in names) + " |",
        "| 1-min load at start | " + " | ".join(f"{rows[n]['load']:.1f}" for n in names) + " |",
        "| eval / train time | " + " | ".join(f"{rows[n]['wall'] / train_s:.2f}" for n in names)
        + " |",
        "| precision | " + " | ".join(rows[n]["precision"] for n in names) + " |",
        "| perplexity, fine-tuned / base | " + " | ".join(
            f"{_number(rows[n]['ppl'][0], 2)} / {_number(rows[n]['ppl'][1], 2)}" for n in names)
        + " |",
        "| hits@1 of the user, fine-tuned / base | " + " | ".join(
            f"{_number(rows[n]['hits'][0], 2)} / {_number(rows[n]['hits'][1], 2)}"
            for n in names) + " |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=31_000)
    parser.add_argument("--before", default=BEFORE, help="git ref of the code to compare with")
    parser.add_argument("--same-work", action="store_true",
                        help="also time this checkout doing the old eval's work: "
                        + " ".join(SAME_WORK))
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench-eval-e2e"))
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps (a quick "
                        "check of the script: fewer; the eval/train ratio then means nothing)")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    from train import _machine

    data, run, train_s = _prepare_and_train(args.dir, args.messages, args.steps)
    manifest = json.loads((data / "manifest.json").read_text())
    rows = {}
    with tempfile.TemporaryDirectory(prefix="doppel-before-") as tmp:
        before = _source_of(args.before, Path(tmp))
        rows[f"before ({args.before})"] = _evaluate("before", before, run, data,
                                                   args.dir / "eval-before")
    rows["after (this checkout)"] = _evaluate("after", ROOT / "src", run, data,
                                              args.dir / "eval-after")
    if args.same_work:
        rows["after, the old work"] = _evaluate("same work", ROOT / "src", run, data,
                                                args.dir / "eval-same-work", tuple(SAME_WORK))
    first, second = list(rows.values())[:2]
    threads = os.environ.get("OMP_NUM_THREADS", "all cores")
    block = (
        f"Machine: {_machine().rsplit(', torch threads', 1)[0]}, OMP_NUM_THREADS {threads}. "
        f"Export: bench/synth_script.py, {args.messages:,} messages -> "
        f"{manifest['counts']['messages_kept']:,} kept, "
        f"{manifest['counts']['conversations']['val']} held-out conversations; cpu-demo run "
        f"({args.steps} steps) trained in {train_s:.0f} s. Command: "
        f"`python bench/eval_end_to_end.py --messages {args.messages} --steps {args.steps} "
        f"--before {args.before}{' --same-work' if args.same_work else ''}"
        f"{' --write-docs' if args.write_docs else ''}`.\n\n"
        + _table(rows, train_s)
        + f"\n\nSpeed-up of the whole eval: {first['wall'] / second['wall']:.2f}x; eval now takes "
        f"{second['wall'] / train_s:.2f}x its run's training time (target under 0.5)."
        + (f" On the old eval's work ({' '.join(SAME_WORK)}): "
           f"{first['wall'] / rows['after, the old work']['wall']:.2f}x."
           if args.same_work else "")
    )
    print(block)
    if args.write_docs:
        write_block(HEADING, "eval_end_to_end.py", block)


if __name__ == "__main__":
    main()
