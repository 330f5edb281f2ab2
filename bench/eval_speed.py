"""Eval's perplexity pass before and after logits-only-where-scored, side by side in one run.

Usage: python bench/eval_speed.py [--model smollm2-135m] [--max-length 512] [--repeats 2]
                                  [--dir /tmp/doppel-bench-train] [--write-docs]

Data: the bundled sample export's held-out conversations, prepared as bench/train.py does (and in
the same --dir, so one preparation serves both). Every speaker of the dataset is scored, as
`doppel eval` scores the trained ones. Both paths run the same plan (same windows, batches by
length, same token budget) on the same loaded model, interleaved --repeats times, fastest kept:
- full: logits and an fp32 cross-entropy at every position (what eval did before);
- scored: logits only at the positions some speaker's labels score (eval/perplexity.py, through
  train/loss.py's hook on the output layer).
Where the CPU has bf16 instructions, `scored` also runs with bf16 weights (what --precision bf16
does; auto stays fp32 on a CPU so perplexities compare across machines). The machine may be
shared: the ratio is what to read, and the 1-minute load is printed next to every time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from benchdocs import write_block

HEADING = "## Eval perplexity: logits only where scored (bench/eval_speed.py)"


def _load_plan(model_spec: str, dataset_dir: Path, max_length: int):
    import torch

    from doppel.chatformat import ChatEncoder
    from doppel.data.dataset import load_dataset
    from doppel.eval.contexts import conversation_turns
    from doppel.eval.perplexity import pad_id, plan_windows
    from doppel.runs import load_run

    dataset = load_dataset(dataset_dir)
    turns = [t for _, t in conversation_turns(dataset, "val")]
    speakers = sorted(set(dataset.speakers.values()))
    loaded = load_run(model_spec, merge=True, dtype=torch.float32)
    loaded.model.eval()
    plan = plan_windows(ChatEncoder(loaded.tokenizer), turns, speakers, max_length)
    return loaded, plan, pad_id(loaded.tokenizer)


def _timed(model, plan, pad: int, fast: bool) -> tuple[float, float, float]:
    """(seconds, 1-minute load at the start, overall perplexity)."""
    from doppel.eval.perplexity import overall, score

    load = os.getloadavg()[0]
    start = time.perf_counter()
    scored = score(model, plan, pad, fast=fast)
    return time.perf_counter() - start, load, overall(scored).perplexity or float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench-train"))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    import torch

    from doppel.hardware import cpu_has_bf16
    from train import _machine, _sample_dataset

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    loaded, plan, pad = _load_plan(args.model, _sample_dataset(args.dir), args.max_length)
    window_tokens = sum(len(w) for w in plan.windows)
    scored_tokens = sum(1 for pairs in plan.labels.values() for _, labels in pairs
                        for label in labels if label != -100)
    configs = {"full (fp32)": (loaded.model, False), "scored (fp32)": (loaded.model, True)}
    if cpu_has_bf16():
        import copy

        configs["scored (bf16)"] = (copy.deepcopy(loaded.model).to(torch.bfloat16), True)
    best: dict[str, tuple[float, float, float]] = {}
    log = []
    for repeat in range(args.repeats):
        for name, (model, fast) in configs.items():
            result = _timed(model, plan, pad, fast)
            log.append(f"run {repeat + 1}: {name}: {result[0]:.1f} s, load {result[1]:.1f}")
            print(f"{log[-1]}, perplexity {result[2]:.4f}", flush=True)
            if name not in best or result[0] < best[name][0]:
                best[name] = result
    full = best["full (fp32)"][0]
    rows = ["| path | seconds | 1-min load | overall perplexity | speed-up |",
            "|---|---:|---:|---:|---:|"]
    rows += [f"| {name} | {s:.1f} | {load:.1f} | {ppl:.4f} | {full / s:.2f}x |"
             for name, (s, load, ppl) in best.items()]
    machine = _machine().rsplit(", torch threads", 1)[0]
    block = (f"Machine: {machine}, torch threads {torch.get_num_threads()}. Model {args.model}, "
             f"max length {args.max_length}: "
             f"{len(plan.windows)} windows, {window_tokens:,} tokens run, {scored_tokens:,} "
             f"scored. Command: `python bench/eval_speed.py --repeats {args.repeats}"
             f"{' --write-docs' if args.write_docs else ''}` (fastest of {args.repeats}).\n\n"
             + "\n".join(rows) + "\n\nEvery run, in order (the load moves a lot): "
             + "; ".join(log) + ".")
    print(block)
    if args.write_docs:
        write_block(HEADING, "eval_speed.py", block)


if __name__ == "__main__":
    main()
