"""Benchmark the Telegram reader alone and `doppel prepare` end to end on big synthetic exports.

Usage: python bench/prepare.py [--sizes 1000000 2000000] [--dir /tmp/doppel-bench] [--no-prepare]
                               [--write-docs]

Each size gets a full-account export written by bench/synth_export.py (kept in --dir for the next
run). Both measurements run in a child process, so peak RSS is that child's alone (os.wait4's
rusage); CPU seconds are printed next to wall seconds because this machine is shared and wall time
depends on what else runs. --write-docs puts the table under "## prepare" in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from synth_export import write_export

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## prepare"
ALTERNATIVES = """\
How the reader walks the file (`src/doppel/sources/jsonstream.py`): the json module's C scanner
decodes one message per call from a 256 KB-chunk text buffer; Python only steps over the few
characters around chats. CPU seconds for a 100k-message synthetic export (42 MB), same machine:

| approach | CPU s | note |
|---|---:|---|
| ijson `items('chats.list.item.messages.item')` | 0.35 | messages only: cannot tell the chat |
| ijson `parse` events, empty Python loop | 0.67 | before building any message |
| ijson parse + `tee`/`compress` (chat ids) + `items` | 1.07 | two parses |
| ijson push coroutines: events -> `items_basecoro` | 1.08 | every event crosses a Python call |
| json C scanner walker, no conversion | 0.49 | chosen |
| json C scanner walker + Message records | 0.65 | the reader as shipped (~155k msgs/s) |

A lookbehind regex for the `\\xHH` fix cost 2.4 s on its own here (now a `bytes.find` loop)."""


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
    from doppel.sources.telegram import TelegramExport

    count = sum(1 for _ in TelegramExport(Path(path)).messages())
    print(json.dumps({"messages": count}))


def _run(cmd: list[str]) -> tuple[str, float, float, float]:
    """Run a child; return its stdout, wall seconds, CPU seconds and peak RSS in MB (its own)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(child.pid, 0)  # this child's rusage, not all children's
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{err.read()[-2000:]}")
        return out.read(), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _measure(what: str, cmd: list[str], export: Path, messages: int | None) -> Result:
    load = os.getloadavg()[0]
    out, wall, cpu, rss = _run(cmd)
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


def _write_docs(results: list[Result]) -> None:
    section = (f"{HEADING}\n\nMachine: {_machine()}. Synthetic full-account exports from "
               "`bench/synth_export.py` (one-space indentation like the exporter, text lists, "
               "text_entities, media, calls, forwards, `\\xHH` escapes). Command: "
               "`python bench/prepare.py --write-docs`. Each row is one child process: peak RSS "
               "is that process alone; \"load avg\" is the 1-minute load when it started (the "
               "machine is shared, so wall time varies; CPU time less so).\n\n"
               f"{_table(results)}\n\n{ALTERNATIVES}\n")
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    start = text.find(HEADING + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text, encoding="utf-8")


def _bench_size(size: int, folder: Path, prepare: bool) -> list[Result]:
    export = folder / f"export-{size}.json"
    if not export.exists():
        started = time.perf_counter()
        megabytes = write_export(export, size) / 1e6
        print(f"wrote {export} ({megabytes:,.0f} MB) in {time.perf_counter() - started:.0f} s")
    label = f"{size // 1000}k"
    reader_cmd = [sys.executable, __file__, "--child-reader", str(export)]
    results = [_measure(f"reader, {label}", reader_cmd, export, None)]
    print(_table(results).splitlines()[-1], flush=True)
    if prepare:
        out = folder / f"dataset-{size}"
        cmd = [sys.executable, "-m", "doppel", "prepare", str(export), "-o", str(out), "--force"]
        results.append(_measure(f"doppel prepare, {label}", cmd, export, results[0].messages))
        print(_table(results).splitlines()[-1], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/doppel-bench"))
    parser.add_argument("--no-prepare", action="store_true", help="measure the reader only")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--child-reader", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_reader:
        _child_reader(args.child_reader)
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        results += _bench_size(size, args.dir, prepare=not args.no_prepare)
    print(_table(results))
    if args.write_docs:
        _write_docs(results)
        print(f"wrote the table to {DOCS}")


if __name__ == "__main__":
    main()
