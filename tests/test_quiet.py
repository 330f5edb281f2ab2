"""Quiet output: doppel's commands print no line about a hub kernel they never use (bitsandbytes'
"Skipping publisher trust check" / "Failed to load CPU gemm_4bit_forward"), and real warnings of
the same libraries still show. Every README command (prepare, train, chat, eval on the sample)
is checked for these lines in tests/test_readme.py with `kernel_noise`."""

from __future__ import annotations

import subprocess
import sys

from doppel.quiet import kernel_noise


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def test_the_kernel_lines_are_dropped_and_real_warnings_kept():
    warn = ("import logging; logging.getLogger('bitsandbytes.backends.cpu.ops')"
            ".warning('a real warning')")
    quiet = _python(f"import doppel.cli, bitsandbytes; {warn}")
    assert quiet.returncode == 0, quiet.stderr
    assert kernel_noise(quiet.stderr + quiet.stdout) == []
    assert "a real warning" in quiet.stderr
    # without doppel's filter the same import prints them (on CPUs where bitsandbytes tries the
    # hub kernel), so the check above can fail
    from bitsandbytes.functional import has_avx512bf16

    if has_avx512bf16():
        loud = _python("import os; os.environ['HF_HUB_OFFLINE'] = '1'; import bitsandbytes")
        assert len(kernel_noise(loud.stderr)) == 2
