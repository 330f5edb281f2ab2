"""`doppel compare`: LoRA and full fine-tuning on the same data, one side-by-side report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from builders import write_dataset, write_tiny_model


@pytest.mark.slow
def test_compare_trains_lora_and_full_and_reports_them_side_by_side(tmp_path):
    dataset = write_dataset(tmp_path / "ds", conversations=30)
    model = write_tiny_model(tmp_path / "tiny")
    out = tmp_path / "compare"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "doppel",
            "compare",
            str(dataset),
            "-o",
            str(out),
            "--quick",
            "--model",
            str(model),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "lora" / "adapter").is_dir() and (out / "full" / "model").is_dir()
    runs = json.loads((out / "eval" / "results.json").read_text())["runs"]
    assert len(runs) == 2
    methods = sorted(r["training"]["method"] for r in runs)
    assert methods == ["full", "lora"]
    for run in runs:
        assert run["training"]["trainable_params"] > 0 and run["training"]["wall_s"] > 0
    lora, full = sorted(runs, key=lambda r: r["training"]["method"], reverse=True)
    assert lora["training"]["trainable_params"] < full["training"]["trainable_params"]
    report = (out / "eval" / "report.md").read_text()
    assert "lora" in report and "full" in report

    again = subprocess.run(
        [sys.executable, "-m", "doppel", "compare", str(dataset), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2 and "--force" in again.stderr
