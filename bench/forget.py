"""What `doppel memory forget` costs on a big export: the preview, the forget (record + index
rebuild, vectors reused), and reading the dataset with a forget record against without one (what
every reader, training included, pays from then on).

Usage: python bench/forget.py [--messages 1000000] [--dir /tmp/doppel-bench-forget] [--write-docs]

A synthetic Telegram export (bench/synth_export.py) is prepared with --groups into --dir (kept
for the next run); a copy forgets its biggest chat's first half by --chat and --before, through
the CLI as a user types it. The reads of the dataset alternate, with and without the record, in
one process, so the ratio holds on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchdocs import run_doppel, write_block
from synth_export import write_export

HEADING = "## memory forget"


def _prepared(root: Path, messages: int) -> Path:
    from doppel.data.options import PrepareOptions
    from doppel.data.pipeline import prepare_dataset

    dataset = root / f"ds-{messages}"
    if not (dataset / "memory.sqlite").is_file():
        export = root / f"export-{messages}.json"
        if not export.is_file():
            write_export(export, messages)
        prepare_dataset(export, dataset, PrepareOptions(groups=True, force=True), progress=False)
    return dataset


def _read_seconds(dataset: Path) -> tuple[float, int]:
    from doppel.data.dataset import load_dataset

    start = time.perf_counter()
    kept = sum(len(c.messages) for c in load_dataset(dataset).conversations())
    return time.perf_counter() - start, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench-forget"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    source = _prepared(args.dir, args.messages)
    dataset = args.dir / "forgetting"
    shutil.rmtree(dataset, ignore_errors=True)
    shutil.copytree(source, dataset)

    from doppel.data.dataset import load_dataset

    sizes: Counter[str] = Counter()
    times: dict[str, list[float]] = {}
    for conversation in load_dataset(dataset).conversations():
        sizes[conversation.chat_id] += len(conversation.messages)
        times.setdefault(conversation.chat_id, []).extend(m.time for m in conversation.messages)
    chat, size = sizes.most_common(1)[0]
    middle = sorted(times[chat])[len(times[chat]) // 2]
    before = datetime.fromtimestamp(middle, UTC).strftime("%Y-%m-%d")
    words = ["memory", "forget", str(dataset), "--chat", chat, "--before", before]
    preview = run_doppel(words)
    forget = run_doppel([*words, "--yes", "-q"])
    record = dataset / "forgotten.jsonl"
    stored = record.read_bytes()
    without, with_record, kept = [], [], 0
    for _ in range(args.rounds):
        record.unlink()
        without.append(_read_seconds(dataset)[0])
        record.write_bytes(stored)
        seconds, kept = _read_seconds(dataset)
        with_record.append(seconds)
    total = sum(sizes.values())
    plain, filtered = min(without), min(with_record)
    load = os.getloadavg()[0]
    block = "\n".join([
        f"{args.messages:,} exported messages, {total:,} in conversations; forgetting "
        f"{total - kept:,} of chat {chat}'s {size:,} (`--chat {chat} --before {before}`); "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
        f"{load:.1f} at the end.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| `memory forget` preview (CLI, process start included) | {preview:.1f} |",
        f"| `memory forget --yes` (record + index rebuild, vectors reused) | {forget:.1f} |",
        f"| read every conversation, no record (best of {args.rounds}) | {plain:.2f} |",
        f"| read every conversation, with the record (best of {args.rounds}) | {filtered:.2f} "
        f"({filtered / plain:.2f}x) |",
        "",
        f"forgotten.jsonl: {len(stored) / 1e6:.2f} MB; memory.sqlite "
        f"{(source / 'memory.sqlite').stat().st_size / 1e6:.0f} -> "
        f"{(dataset / 'memory.sqlite').stat().st_size / 1e6:.0f} MB.",
    ])
    print(block)
    if args.write_docs:
        write_block(HEADING, "forget.py", block)


if __name__ == "__main__":
    main()
