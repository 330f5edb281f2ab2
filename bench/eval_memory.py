"""Does training with memories help? cpu-demo runs trained with memory_share 0 and with a share
(same data, seed and steps), each scored by `doppel eval` with memory on and off.

Usage: python bench/eval_memory.py [--shares 0 0.5] [--scale 1] [--steps N] [--full]
                                   [--dir DIR] [--runs-from DIR] [--write-docs]
  e.g. python bench/eval_memory.py --dir /tmp/m1 --write-docs                 (the sample)
       python bench/eval_memory.py --scale 7 --steps 26 --dir /tmp/m7 --write-docs

The export is the bundled sample (--scale 1, what `make demo` trains on) or the sample's
generator run over --scale times as many days, with its planted facts (Sam's corgi Biscuit, his
sister Clara from Edinburgh, ...) placed --scale times as often: --scale 7 is a realistic-size
export (35k messages, 30k kept, like issue 20's 31k-message prototype) that still has
recurring facts for the fact test to find. Every run is `doppel train DATASET --recipe cpu-demo
--memory-share S` (plus --max-steps when given), all evaluated in one `doppel eval` (the base
model once) with the demo's eval settings (--quick's short replies, eval's default amounts of
held-out data: doppel.demo.THOROUGH; --full: eval's defaults).
Printed per run: the memory section's numbers, each with its paired 95% interval (with memory
minus without): the fact test (mean log-likelihood per token of the fact words, recall@3),
held-out perplexity, and the ranking test's hits@1 and MRR for the user. Reruns reuse what
--dir holds (export, dataset, runs, and an eval newer than its runs); the 1-minute load is
printed next to every time. OMP_NUM_THREADS=1 is the better setting on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path

from benchdocs import run_doppel, write_block

HEADINGS = {
    1: "## Training with memories: memory_share 0 against 0.5 on the sample "
       "(bench/eval_memory.py)",
    0: "## Memory on a realistic-size export: the sample's generator, scaled "
       "(bench/eval_memory.py --scale 7)",
}



def demo_eval_flags() -> list[str]:
    """`doppel eval` flags for what the demo's eval does (doppel.demo.evaluate_into)."""
    from doppel.demo import THOROUGH
    from doppel.eval.options import EvalOptions

    amounts = [(f"--{name.replace('_', '-')}", str(EvalOptions.model_fields[name].default))
               for name in THOROUGH]
    return ["--quick", *(word for pair in amounts for word in pair)]

def write_export(folder: Path, scale: int) -> Path:
    """The sample export, or the sample's generator over `scale` times the days (ending where
    the sample ends) with each chat's scripted exchanges and facts placed `scale` times."""
    from doppel.sample import generator

    if scale == 1:
        return generator.write_sample_export(folder)
    days, start, with_facts = generator.DAYS, generator.START, generator.with_facts
    generator.DAYS = days * scale
    generator.START = start - timedelta(days=days * (scale - 1))
    generator.with_facts = lambda key: with_facts(key) * scale
    try:
        return generator.write_sample_export(folder)
    finally:
        generator.DAYS, generator.START, generator.with_facts = days, start, with_facts


def _load() -> float:
    return os.getloadavg()[0]


def prepare_and_train(root: Path, scale: int, shares: list[float], steps: int | None,
                      runs_from: Path | None = None
                      ) -> tuple[Path, dict[str, Path], dict[str, str]]:
    """The dataset and one run per share (made once, reused, or taken from `runs_from`, where
    this script trained them on another export); and how each run was made."""
    dataset = root / "dataset"
    if not (dataset / "manifest.json").exists():
        export = write_export(root / "export", scale)
        run_doppel(["prepare", str(export), "-o", str(dataset), "-q", "--force"])
    runs, notes = {}, {}
    for share in shares:
        name = f"memory_share {share:g}"
        run = runs[name] = (runs_from or root) / f"run-share-{share:g}"
        if not (run / "run.json").exists():
            if runs_from:
                raise SystemExit(f"--runs-from: no run {run}")
            load = _load()
            seconds = run_doppel(["train", str(dataset), "-o", str(run), "--recipe", "cpu-demo",
                               "--memory-share", str(share), "--force",
                               *(["--max-steps", str(steps)] if steps else [])])
            print(f"{name}: trained in {seconds:.0f} s (load {load:.1f})", flush=True)
        summary = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        done = next(row["summary"] for row in reversed(summary) if "summary" in row)
        notes[name] = (f"{done['steps']} steps, {done['train_tokens']:,} training tokens, "
                       f"val loss {done['val_loss']:.3f}, {done['wall_s']:.0f} s")
    return dataset, runs, notes


def evaluate(runs: dict[str, Path], dataset: Path, out: Path, full: bool) -> float:
    """`doppel eval` of every run at once; an eval of these runs, newer than each, is reused (with
    the time it took, kept next to it)."""
    done, timed = out / "results.json", out.parent / f"{out.name}-seconds.txt"
    same = done.exists() and [r["path"] for r in json.loads(done.read_text())["runs"]] == [
        str(r.resolve()) for r in runs.values()]
    if same and timed.exists() and all(
            done.stat().st_mtime > (r / "run.json").stat().st_mtime for r in runs.values()):
        print(f"eval reused: {out}", flush=True)
        return float(timed.read_text())
    load = _load()
    quick = [] if full else demo_eval_flags()
    seconds = run_doppel(["eval", *map(str, runs.values()), "--data", str(dataset), "-o", str(out),
                       "--force", *quick])
    print(f"eval of {len(runs)} runs and their base: {seconds:.0f} s (load {load:.1f})",
          flush=True)
    timed.write_text(f"{seconds:.1f}")
    return seconds


def _cells(with_memory: float | None, without: float | None, interval, digits: int = 2
           ) -> list[str]:
    """without, with memory, change [95%] (the paired interval of with minus without)."""
    if with_memory is None or without is None:
        return ["n/a"] * 3
    return [f"{without:.{digits}f}", f"{with_memory:.{digits}f}",
            f"{with_memory - without:+.{digits}f}{_interval(interval, digits)}"]


def _interval(found, digits: int = 2, sign: str = "+") -> str:
    if found is None:
        return ""
    low, high = found.change if hasattr(found, "change") else found
    return f" [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def rows_of(result, me: str) -> list[tuple[str, list[str]]]:
    """The memory section's numbers of one run, a row per measure (in each row of the section,
    fine_tuned is with memory and base without, both this run)."""
    found = result.metrics["memory"]
    if found.state != "on":
        return [(f"memory {found.state}", ["", "", ""])]
    rows = []
    facts = found.facts
    if facts and facts.turns:
        rows.append((f"fact words' log-likelihood per token ({facts.turns} turns, "
                     f"{facts.tokens} tokens)",
                     _cells(facts.with_memory, facts.without, facts.intervals)))
        rows.append((f"fact recall@{facts.k}",
                     ["", f"{facts.recall:.2f}{_interval(facts.recall_interval, sign='')}", ""]))
        rows.append(("the fact words scored (most turns first)",
                     ["", ", ".join(facts.words), ""]))
    else:
        rows.append(("fact test", ["no fact turns", "", ""]))
    overall = found.overall
    rows.append((f"held-out perplexity ({overall.tokens:,} tokens)",
                 _cells(overall.fine_tuned, overall.base, overall.intervals)))
    ranked = found.ranking.get(me)
    if ranked is not None and not ranked.note:
        rows.append((f"hits@1 of {me} ({ranked.contexts} contexts)",
                     _cells(ranked.fine_tuned_hits, ranked.base_hits, ranked.intervals)))
        rows.append(("MRR", _cells(ranked.fine_tuned_mrr, ranked.base_mrr,
                                   ranked.mrr_intervals)))
    rows.append(("contexts with memories found",
                 ["", f"{found.with_memories} of {found.contexts}", ""]))
    return rows


def table(out: Path, names: list[str]) -> str:
    """One markdown table: a row per measure, without / with / change for each run (`names`,
    in the order the runs were given to eval)."""
    from doppel.eval.store import read_results

    results = read_results(out)
    me = json.loads((out / "results.json").read_text())["dataset"]["me"]
    columns = {name: dict(rows_of(run, me))
               for name, run in zip(names, results.runs, strict=True)}
    measures = list(dict.fromkeys(m for rows in columns.values() for m in rows))
    lines = ["| measure | " + " | ".join(f"{n}: without | with memory | change [95%]"
                                          for n in names) + " |",
             "|---|" + "---:|---:|---:|" * len(names)]
    for measure in measures:
        cells = [cell for n in names for cell in columns[n].get(measure, ["-"] * 3)]
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.5],
                        help="one cpu-demo run per --memory-share")
    parser.add_argument("--scale", type=int, default=1, help="days (and facts) of the sample "
                        "times this: 7 is a realistic-size export")
    parser.add_argument("--steps", type=int, help="--max-steps for training (default: the "
                        "recipe's one epoch, as the demo trains)")
    parser.add_argument("--full", action="store_true", help="eval's defaults, not the demo's "
                        "eval (--quick's short replies, eval's default amounts)")
    parser.add_argument("--dir", type=Path, help="work in this folder and keep it (reused)")
    parser.add_argument("--runs-from", type=Path, help="evaluate the runs this script trained "
                        "in that --dir (on another export) instead of training here: on a slow "
                        "or loaded machine, the sample's runs on the scaled export")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the block into docs/benchmarks.md")
    args = parser.parse_args()
    from train import _machine

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        dataset, runs, notes = prepare_and_train(root, args.scale, args.shares, args.steps,
                                                args.runs_from)
        eval_s = evaluate(runs, dataset, root / "eval", args.full)
        manifest = json.loads((dataset / "manifest.json").read_text())
        counts = manifest["counts"]
        threads = os.environ.get("OMP_NUM_THREADS", "all cores")
        block = (
            f"Machine: {_machine().rsplit(', torch threads', 1)[0]}, 1-min load at the end "
            f"{_load():.1f}. Export: the sample"
            + (f" scaled {args.scale}x" if args.scale > 1 else "")
            + f", {counts['messages_read']:,} messages read, {counts['messages_kept']:,} kept, "
            f"{counts['conversations']['train']} training and {counts['conversations']['val']} "
            "held-out conversations. Runs (cpu-demo"
            + (", trained on the sample, not this export" if args.runs_from else "") + "): "
            + "; ".join(f"{name}: {note}" for name, note in notes.items())
            + f". Eval ({'defaults' if args.full else ' '.join(demo_eval_flags())}, all runs "
            f"and the base in one call, OMP_NUM_THREADS {threads}): {eval_s:.0f} s. "
            "Command: `python bench/eval_memory.py "
            f"--shares {' '.join(f'{s:g}' for s in args.shares)} --scale {args.scale}"
            + (f" --steps {args.steps}" if args.steps else "") + (" --full" if args.full else "")
            + (" --runs-from SAMPLE_DIR" if args.runs_from else "")
            + "`.\n\n" + table(root / "eval", list(runs))
        )
        print(block)
        if args.write_docs:
            write_block(HEADINGS[int(args.scale == 1)], f"eval_memory.py --scale {args.scale}",
                        block)


if __name__ == "__main__":
    main()
