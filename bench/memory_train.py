"""Does training with memories help? Two short cpu-demo runs on the bundled sample, one without
memories (memory_share 0) and one with (--share, default 0.5), each scored on the held-out
conversations' windows with memories (every window opens with what retrieval finds in its
scope, from strictly earlier conversations) and without. Prints mean loss per trained token
(nats) for the four pairs; same data, seed and steps for both runs.

Usage: .venv/bin/python bench/memory_train.py [--steps 15] [--share 0.5] [--windows 64]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def held_out_loss(run: Path, dataset_dir: Path, share: float, windows: int) -> tuple[float, int]:
    """(mean loss per trained token, tokens) over the first `windows` val windows."""
    import torch

    from doppel.chatformat import IGNORE_INDEX, ChatEncoder
    from doppel.data.dataset import load_dataset
    from doppel.runs import load_run
    from doppel.train.data import build_windows, window_memories

    loaded = load_run(run, merge=True)
    dataset = load_dataset(dataset_dir)
    memories = window_memories(dataset, share, loaded.info.max_length, seed=1)
    examples = build_windows(dataset, ChatEncoder(loaded.tokenizer), {dataset.me_name},
                             loaded.info.max_length, "val", memories).examples[:windows]
    total, count = 0.0, 0
    with torch.no_grad():
        for example in examples:
            ids = torch.tensor([example.input_ids])
            labels = torch.tensor(example.labels[1:])
            logits = loaded.model(ids).logits[0, :-1].float()
            total += torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX,
                                                       reduction="sum").item()
            count += int((labels != IGNORE_INDEX).sum())
    return total / max(count, 1), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--windows", type=int, default=64)
    args = parser.parse_args()
    from doppel.data.options import PrepareOptions
    from doppel.data.pipeline import prepare_dataset
    from doppel.sample import write_sample_export

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepare_dataset(write_sample_export(root / "export"), root / "dataset", PrepareOptions(),
                        progress=False)
        runs = {}
        for share in (0.0, args.share):
            run = root / f"run-{share}"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "doppel", "train", root / "dataset", "-o", run,
                            "--recipe", "cpu-demo", "--max-steps", str(args.steps),
                            "--memory-share", str(share)], check=True,
                           stdout=subprocess.DEVNULL)
            print(f"trained memory_share {share}: {time.perf_counter() - start:.0f} s",
                  flush=True)
            runs[share] = run
        for share, run in runs.items():
            for scored in (0.0, 1.0):
                loss, tokens = held_out_loss(run, root / "dataset", scored, args.windows)
                print(f"run memory_share {share}: held-out loss {loss:.4f} nats/token "
                      f"({tokens} tokens) with memories {'on' if scored else 'off'}",
                      flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
