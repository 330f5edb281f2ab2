"""Quiet output: doppel's commands print no line about a hub kernel they never use (bitsandbytes'
"Skipping publisher trust check" / "Failed to load CPU gemm_4bit_forward"), and real warnings of
the same libraries still show."""

from __future__ import annotations

import subprocess
import sys

import pytest

from builders import run_doppel, write_tiny_model
from doppel.quiet import NOISE

LINES = [start for starts in NOISE.values() for start in starts]


def _noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(start in line for start in LINES)]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def test_the_kernel_lines_are_dropped_and_real_warnings_kept():
    warn = ("import logging; logging.getLogger('bitsandbytes.backends.cpu.ops')"
            ".warning('a real warning')")
    quiet = _python(f"import doppel.cli, bitsandbytes; {warn}")
    assert quiet.returncode == 0, quiet.stderr
    assert _noise(quiet.stderr + quiet.stdout) == []
    assert "a real warning" in quiet.stderr
    # without doppel's filter the same import prints them (on CPUs where bitsandbytes tries the
    # hub kernel), so the check above can fail
    from bitsandbytes.functional import has_avx512bf16

    if has_avx512bf16():
        loud = _python("import os; os.environ['HF_HUB_OFFLINE'] = '1'; import bitsandbytes")
        assert len(_noise(loud.stderr)) == 2


@pytest.mark.slow
def test_prepare_train_chat_eval_on_the_sample_print_no_kernel_line(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    (tmp_path / "script.txt").write_text("hey\nwhat's up?\n", encoding="utf-8")
    steps = [
        ["sample-export", tmp_path / "export"],
        ["prepare", tmp_path / "export", "-o", tmp_path / "data"],
        ["train", tmp_path / "data", "-o", tmp_path / "run", "--model", model, "--max-steps", "1",
         "--max-length", "64", "--micro-batch-size", "2", "--grad-accum", "1"],
        ["chat", tmp_path / "run", "--script", tmp_path / "script.txt", "--max-new-tokens", "4",
         "--precision", "fp32"],  # the float32 load the kernel line came with
        ["eval", tmp_path / "run", "--data", tmp_path / "data", "-o", tmp_path / "eval",
         "--quick", "--max-contexts", "2", "--max-new-tokens", "2", "--no-transcripts",
         "--rank-candidates", "0"],
    ]
    for args in steps:
        done = run_doppel(args, timeout=900)
        assert done.returncode == 0, (args[0], done.stderr[-2000:])
        assert _noise(done.stdout + done.stderr) == [], args[0]
