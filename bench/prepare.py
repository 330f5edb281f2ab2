"""Benchmark the readers alone and `doppel prepare` end to end on big synthetic exports.

Usage: python bench/prepare.py [--sizes 1000000 2000000] [--dir /tmp/doppel-bench] [--no-prepare]
                               [--no-whatsapp] [--no-imessage] [--baseline SRC ...]
                               [--rounds N] [--no-index] [--write-docs]

Each size gets a Telegram full-account export written by bench/synth_export.py (read, prepared
without and with --groups) and a WhatsApp chat
of the same number of messages from bench/synth_whatsapp.py (both kept in --dir for the next
run); the WhatsApp rows run right after the Telegram ones, and the ratio of the two is printed
(the goal: WhatsApp within 2x of Telegram, in flat memory). iMessage rows do the same with a
Messages database of that many messages from bench/synth_imessage.py (same goal; --no-imessage
leaves them out). Every measurement runs in a child
process, so peak RSS is that child's alone (os.wait4's
rusage); CPU seconds are printed next to wall seconds because this machine is shared and wall time
depends on what else runs. --baseline SRC also runs the same children with another version's
`src` folder first on PYTHONPATH (e.g. `git archive <commit> src | tar -x -C /tmp/base`, then
`--baseline /tmp/base/src`; several folders are measured in turn), as "before (base)" rows
measured under the same load. Telegram's `doppel prepare` row comes twice, without the memory
index and then with it (prepare as a user runs it), and the index's share is printed.
--write-docs puts the table under "## prepare" in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchdocs import DOCS, write_block

HEADING = "## prepare"


@dataclass
class Result:
    what: str
    messages: int
    size_mb: float
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    load: float

    @property
    def rate(self) -> float:
        return self.messages / self.wall_s

    @property
    def cpu_rate(self) -> float:
        return self.messages / self.cpu_s


def _child_reader(path: str) -> None:
    """Runs in the child: stream every message, print the count."""
    from doppel.sources import open_export

    count = sum(1 for _ in open_export(Path(path)).messages())
    print(json.dumps({"messages": count}))


def _run(cmd: list[str], src: Path | None = None) -> tuple[str, float, float, float]:
    """Run a child; return its stdout, wall seconds, CPU seconds and peak RSS in MB (its own).
    `src`: a doppel source folder to import instead of the installed one."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _pid, status, usage = os.wait4(child.pid, 0)  # this child's rusage, not all children's
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{err.read()[-2000:]}")
        return out.read(), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _measure(what: str, cmd: list[str], export: Path, messages: int | None,
             src: Path | None = None) -> Result:
    load = os.getloadavg()[0]
    out, wall, cpu, rss = _run(cmd, src)
    count = json.loads(out.strip().splitlines()[-1])["messages"] if messages is None else messages
    return Result(what, count, export.stat().st_size / 1e6, wall, cpu, rss, load)


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def _table(results: list[Result]) -> str:
    rows = ["| what | messages | export MB | wall s | msgs/s (wall) | CPU s | msgs/s (CPU) "
            "| peak RSS MB | load avg |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {r.what} | {r.messages:,} | {r.size_mb:,.0f} | {r.wall_s:.1f} | {r.rate:,.0f} "
             f"| {r.cpu_s:.1f} | {r.cpu_rate:,.0f} | {r.peak_rss_mb:,.0f} | {r.load:.1f} |"
             for r in results]
    return "\n".join(rows)


def _write_docs(results: list[Result], load: str, ratios: list[str]) -> None:
    block = (f"Machine: {_machine()}; load average at the start {load}. Synthetic full-account "
             "exports from `bench/synth_export.py` (one-space indentation like the exporter, text "
             "lists, text_entities, media, calls, forwards, `\\xHH` escapes). Command: "
             "`python bench/prepare.py --write-docs`. Each row is one child process: peak RSS "
             "is that process alone; \"load avg\" is the 1-minute load when it started (wall "
             "time moves with the load; CPU time less so). WhatsApp rows: one Android chat of the "
             "same number of messages from `bench/synth_whatsapp.py`, measured right after the "
             "Telegram rows.\n\n" + _table(results) + "".join(f"\n\n- {r}" for r in ratios))
    write_block(HEADING, "prepare.py", block)


def _child_prepare(args: list[str]) -> None:
    """Runs in the child: `doppel prepare ARGS` without its memory index (versions before the
    index have nothing to leave out)."""
    import runpy

    from doppel.data import pipeline

    if hasattr(pipeline, "_write_memory"):
        pipeline._write_memory = lambda *args, **kwargs: None
    if hasattr(pipeline, "_index_process"):  # nor the index's process started before reading
        pipeline._index_process = lambda *args, **kwargs: contextlib.nullcontext()
    sys.argv = ["doppel", "prepare", *args]
    runpy.run_module("doppel", run_name="__main__")


def _bench_size(size: int, folder: Path, prepare: bool, src: Path | None = None,
                source: str = "telegram", index: bool = True) -> list[Result]:
    # imported here: a --baseline child imports this file with an older doppel, which the
    # newer writers' imports (synth_imessage's typedstream) may not have
    from synth_export import write_export
    from synth_imessage import write_export as write_imessage
    from synth_whatsapp import write_export as write_whatsapp

    whatsapp = source == "whatsapp"
    name, writer = {"whatsapp": (f"whatsapp-{size}.txt", write_whatsapp),
                    "imessage": (f"imessage-{size}.db", write_imessage)}.get(
        source, (f"export-{size}.json", write_export))
    export = folder / name
    if not export.exists():
        started = time.perf_counter()
        megabytes = writer(export, size) / 1e6
        print(f"wrote {export} ({megabytes:,.0f} MB) in {time.perf_counter() - started:.0f} s")
    before = f"before ({src.parent.name}): " if src else ""
    prefix = "" if source == "telegram" else f"{source} "
    label = f"{before}{prefix}%s, {size // 1000}k"
    noted = "%s" if index else "%s (no memory index)"
    reader_cmd = [sys.executable, __file__, "--child-reader", str(export)]
    results = [_measure(label % "reader", reader_cmd, export, None, src)]
    print(_table(results).splitlines()[-1], flush=True)
    if prepare:
        out = folder / f"dataset-{source}-{size}"
        # -q: the progress bar's refresh thread costs CPU in proportion to wall time, so on a
        # loaded machine it inflates the CPU seconds this table compares
        args = [str(export), "-o", str(out), "--force", "-q"]
        bare = [sys.executable, __file__, "--child-prepare", *args]
        cmd = [sys.executable, "-m", "doppel", "prepare", *args] if index else bare
        cmd += ["--me", "Alex Doe"] if whatsapp else []
        if index and source == "telegram":  # both parts: prepare alone, then with the index
            results.append(_measure(label % "doppel prepare (no memory index)", bare, export,
                                    results[0].messages, src))
            print(_table(results).splitlines()[-1], flush=True)
        results.append(_measure(label % (noted % "doppel prepare"), cmd, export,
                                results[0].messages, src))
        print(_table(results).splitlines()[-1], flush=True)
        if not whatsapp:  # a full account with its group chats, as a new user would try it
            results.append(_measure(label % (noted % "doppel prepare --groups"),
                                    [*cmd, "--groups"], export, results[0].messages, src))
            print(_table(results).splitlines()[-1], flush=True)
    return results


def _ratios(results: list[Result]) -> list[str]:
    """WhatsApp (iMessage) over Telegram for each pair of rows measured side by side."""
    lines = []
    for row in results:
        other = next((p for p in ("whatsapp ", "imessage ") if row.what.startswith(p)), None)
        if other:
            twin = next((r for r in results if r.what == row.what.removeprefix(other)), None)
            if twin is not None:
                lines.append(f"{row.what}: {row.wall_s / twin.wall_s:.2f}x Telegram's wall time, "
                             f"{row.cpu_s / twin.cpu_s:.2f}x its CPU time, peak RSS "
                             f"{row.peak_rss_mb:,.0f} MB (Telegram {twin.peak_rss_mb:,.0f} MB)")
    return lines


def _index_parts(results: list[Result]) -> list[str]:
    """What the memory index adds to `doppel prepare`: each "(no memory index)" row against the
    row measured right after it with the index (goal, issue 29: at most half of the rest)."""
    lines = []
    for bare, full in itertools.pairwise(results):
        if " (no memory index)" in bare.what and \
                full.what == bare.what.replace(" (no memory index)", ""):
            lines.append(
                f"{full.what}: the memory index adds {full.wall_s - bare.wall_s:.1f} s wall "
                f"({(full.wall_s - bare.wall_s) / bare.wall_s:.2f}x the rest's "
                f"{bare.wall_s:.1f} s) and {full.cpu_s - bare.cpu_s:.1f} s CPU "
                f"({(full.cpu_s - bare.cpu_s) / bare.cpu_s:.2f}x the rest's {bare.cpu_s:.1f} s); "
                f"{full.rate:,.0f} messages/s with it, {bare.rate:,.0f} without (wall)")
    return lines


def _medians(results: list[Result]) -> str:
    """Median CPU seconds of each row over the rounds, and each version's over the last's."""
    import statistics

    cpu: dict[str, list[float]] = {}
    for row in results:
        cpu.setdefault(row.what, []).append(row.cpu_s)
    medians = {what: statistics.median(times) for what, times in cpu.items()}
    lines = ["| what | rounds | median CPU s | over this version |", "|---|---:|---:|---:|"]
    for what, median in medians.items():
        mine = medians.get(what.split("): ", 1)[-1], median)
        lines.append(f"| {what} | {len(cpu[what])} | {median:.2f} | {median / mine:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench"))
    parser.add_argument("--no-prepare", action="store_true", help="measure the reader only")
    parser.add_argument("--no-whatsapp", action="store_true", help="no WhatsApp rows")
    parser.add_argument("--no-imessage", action="store_true", help="no iMessage rows")
    parser.add_argument("--baseline", type=Path, nargs="+", default=[],
                        help="other versions' src folders to compare (rows named after the "
                             "folder holding src)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every version this many times, interleaved, and print "
                        "each row's median CPU seconds (ratios that hold on a loaded machine)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--no-index", action="store_true",
                        help="prepare rows without the memory index (to compare with versions "
                        "from before it)")
    parser.add_argument("--child-reader", help=argparse.SUPPRESS)
    parser.add_argument("--child-prepare", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_reader:
        _child_reader(args.child_reader)
        return
    if args.child_prepare is not None:
        _child_prepare(args.child_prepare)
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"
    results = []
    for size in args.sizes:
        for _ in range(args.rounds):
            for baseline in args.baseline:
                results += _bench_size(size, args.dir, not args.no_prepare, baseline,
                                       index=not args.no_index)
            results += _bench_size(size, args.dir, prepare=not args.no_prepare,
                                   index=not args.no_index)
        if not args.no_whatsapp:
            results += _bench_size(size, args.dir, not args.no_prepare, source="whatsapp")
        if not args.no_imessage:
            results += _bench_size(size, args.dir, not args.no_prepare, source="imessage")
    print(_table(results))
    if args.rounds > 1:
        print(_medians(results))
    ratios = _ratios(results) + _index_parts(results)
    print("\n".join(ratios))
    if args.write_docs:
        _write_docs(results, load, ratios)
        print(f"wrote the table to {DOCS}")


if __name__ == "__main__":
    main()
