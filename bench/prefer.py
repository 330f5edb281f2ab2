"""SFT alone against SFT + the preference stage (`doppel train --prefer`), same data and seed.

Usage: python bench/prefer.py [--export sample|script] [--messages 31000] [--steps N]
                              [--pairs 64] [--stage "FLAGS"] [--contexts 200]
                              [--eval-flags "FLAGS"] [--dir DIR] [--write-docs]

The export is the bundled sample (`doppel sample-export`) or bench/synth_script.py's TV-script
export of --messages messages (issue 30's "7x export"); it is prepared and trained with the
cpu-demo recipe (--steps, default the recipe's), then `doppel train --prefer --from RUN` runs on
top with --pairs self-play pairs and --stage's other flags (e.g. "--prefer-nll-weight 1";
a run folder per set of flags), and one `doppel eval RUN-prefer RUN --max-contexts N` measures
both against the same base on the same held-out contexts. Every step is its own process, as a
user types it, and is kept in --dir (a rerun reuses what is there).

Printed (and with --write-docs, docs/benchmarks.md's block): for the user, the automatic blind
test (share of pairs where the discriminator picks the real reply, 95% interval; issue 30's goal:
down by 10 points, intervals apart), hits@1 and MRR of the ranking test, perplexity, style
distance, characters per message of the replies (real: the same contexts' real replies), and
each step's wall time with the 1-minute load (timings mean something only on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
from pathlib import Path

from benchdocs import run_doppel, write_block

HEADING = "## Preference stage: SFT against SFT + DPO (bench/prefer.py)"


def _timed(name: str, args: list[str], walls: dict[str, tuple[float, float]]) -> None:
    load = os.getloadavg()[0]
    print(f"{name} (load {load:.1f})", flush=True)
    walls[name] = (run_doppel(args), load)


def _export(folder: Path, kind: str, messages: int) -> Path:
    if kind == "sample":
        run_doppel(["sample-export", str(folder / "export"), "--force"])
        return folder / "export" / "result.json"
    from synth_script import write_export

    write_export(folder / "export.json", messages)
    return folder / "export.json"


def _cell(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _with(value, interval, digits: int = 2) -> str:
    if value is None or not interval:
        return _cell(value, digits)
    return f"{_cell(value, digits)} [{_cell(interval[0], digits)}, {_cell(interval[1], digits)}]"


def _rows(results: dict, preferred: str) -> dict[str, list[str]]:
    """metric -> [base, SFT, SFT + DPO] cells for the user."""
    me = results["dataset"]["me"]
    runs = {Path(r["path"]).name: r for r in results["runs"]}
    sft, dpo = runs["run"], runs[preferred]

    def both(get) -> list[str]:
        return [get(sft, "base"), get(sft, "fine_tuned"), get(dpo, "fine_tuned")]

    def blind(run, which):
        row = (run.get("discriminator") or {}).get("speakers", {}).get(me)
        return _with(row and row[which], row and row["intervals"] and row["intervals"][which])

    def ranked(key):
        def get(run, which):
            row = run["ranking"].get(me) or {}
            return _cell(row.get(f"{which}_{key}"))
        return get

    def styled(run, which):
        row = run["style"].get(me)
        return _cell(row and row["distance" if which == "fine_tuned" else "base_distance"])

    def chars(run, which):
        row = run["style"].get(me)
        return _cell(row and row[which]["chars"], 1)

    def ppl(run, which):
        return _cell(run["perplexity"]["speakers"].get(me, {}).get(which))

    real = results["runs"][0]["style"].get(me)
    return {
        "automatic blind test: real reply picked (0.50 = indistinguishable)": both(blind),
        "hits@1": both(ranked("hits")),
        "MRR": both(ranked("mrr")),
        "perplexity of the user's held-out messages": both(ppl),
        "style distance": both(styled),
        f"characters per message (real: {_cell(real and real['real']['chars'], 1)})": both(chars),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", choices=("sample", "script"), default="sample")
    parser.add_argument("--messages", type=int, default=31_000, help="for --export script")
    parser.add_argument("--steps", type=int, default=None, help="SFT steps (default: cpu-demo's)")
    parser.add_argument("--pairs", type=int, default=64, help="--prefer-pairs")
    parser.add_argument("--stage", default="", help="more flags for the preference stage")
    parser.add_argument("--eval-flags", default="", help="more flags for the eval")
    parser.add_argument("--contexts", type=int, default=200, help="eval --max-contexts")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench-prefer"))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    folder = args.dir / args.export
    folder.mkdir(parents=True, exist_ok=True)
    tag = re.sub(r"[^a-z0-9.]+", "-", args.stage.lower()).strip("-")
    data, run = folder / "data", folder / "run"
    preferred = folder / ("run-prefer" + (f"-{tag}" if tag else ""))
    walls: dict[str, tuple[float, float]] = {}
    if not (data / "manifest.json").exists():
        _timed("prepare", ["prepare", str(_export(folder, args.export, args.messages)), "-o",
                           str(data), "-q", "--force"], walls)
    if not (run / "run.json").exists():
        steps = ["--max-steps", str(args.steps)] if args.steps else []
        _timed("SFT (cpu-demo)", ["train", str(data), "-o", str(run), "--recipe", "cpu-demo",
                                  *steps, "--force"], walls)
    if not (preferred / "run.json").exists():
        _timed("preference stage", ["train", str(data), "--prefer", "--from", str(run), "-o",
                                    str(preferred), "--prefer-pairs", str(args.pairs),
                                    *shlex.split(args.stage), "--force"], walls)
    evaluated = folder / f"eval-{preferred.name}"
    _timed("eval (both runs)", ["eval", str(preferred), str(run), "--data", str(data), "-o",
                                str(evaluated), "--max-contexts", str(args.contexts),
                                *shlex.split(args.eval_flags), "--force"], walls)
    results = json.loads((evaluated / "results.json").read_text())
    lines = ["| for the user | base | SFT | SFT + DPO |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in
              _rows(results, preferred.name).items()]
    times = "; ".join(f"{name} {wall:.0f} s (load {load:.1f})"
                      for name, (wall, load) in walls.items())
    block = (f"Export: {args.export}"
             + (f" ({args.messages:,} messages)" if args.export == "script" else "")
             + f"; cpu-demo SFT{f' ({args.steps} steps)' if args.steps else ''}, then "
             f"--prefer-pairs {args.pairs} {args.stage}; eval --max-contexts {args.contexts}. "
             f"Command: `python bench/prefer.py --export {args.export} --pairs {args.pairs}"
             + (f" --stage \"{args.stage}\"" if args.stage else "")
             + f" --contexts {args.contexts}"
             + (f" --eval-flags \"{args.eval_flags}\"" if args.eval_flags else "")
             + "`.\n\n" + "\n".join(lines)
             + f"\n\nWall time: {times or 'reused'}.")
    print(block)
    if args.write_docs:
        write_block(HEADING, "prefer.py", block)


if __name__ == "__main__":
    main()
