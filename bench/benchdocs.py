"""What bench scripts share: their own marked block in docs/benchmarks.md, and running the CLI.

Only the text between a script's markers is generated; the prose around it (what the numbers
mean, what was tried) is written by people and survives a rerun.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"


def run_doppel(args: list[str]) -> float:
    """Run `doppel ARGS` (this checkout's package) as a user would; returns wall seconds."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "doppel", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def write_block(heading: str, script: str, block: str) -> None:
    """Replace `script`'s marked block, or add a `heading` section holding it at the end."""
    start_marker = f"<!-- bench/{script} table -->"
    end_marker = f"<!-- end bench/{script} table -->"
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    generated = f"{start_marker}\n{block.strip()}\n{end_marker}"
    start, end = text.find(start_marker), text.find(end_marker)
    if start >= 0 and end > start:
        text = text[:start] + generated + text[end + len(end_marker):]
    else:
        text = text.rstrip("\n") + f"\n\n{heading}\n\n{generated}\n"
    temporary = DOCS.with_suffix(".md.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(DOCS)
