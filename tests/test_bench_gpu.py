"""bench/gpu.py refuses clearly without CUDA; its measuring logic runs on CPU with tiny shapes.
(bench/gpu_check.py, which runs it per case, runs once in tests/test_offline_node.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu.py"


def test_without_cuda_it_says_so_and_exits_2():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "needs a CUDA GPU" in done.stderr and "Traceback" not in done.stderr


def test_tiny_cpu_run_trains_both_methods_and_writes_json(tmp_path):
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--peak-tflops", "1",
           "--cases", "7b-lora", "7b-full", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    lora, full = report["results"]
    assert (lora["case"], full["case"]) == ("7b-lora", "7b-full")
    assert all(r["status"] == "ok" and r["tokens_per_s"] > 0 for r in (lora, full))
    assert 0 < lora["trainable"] < lora["params"] and full["trainable"] == full["params"]
    # MFU is 6 N tokens/s over the peak given (1 TFLOP/s here)
    assert full["mfu"] == pytest.approx(6 * full["matmul_params"] * full["tokens_per_s"] / 1e12,
                                        rel=1e-2, abs=1e-4)
    assert len(full["losses"]) == 3  # 1 warm-up + 2 timed steps
    assert "7b-full" in done.stdout

