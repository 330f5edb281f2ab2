"""`doppel compare`: LoRA and full fine-tuning on the same data, one side-by-side report."""

from __future__ import annotations

import pytest

from builders import run_doppel, write_dataset, write_tiny_model
from doppel.eval.store import read_results


@pytest.mark.slow
def test_compare_trains_lora_and_full_and_reports_them_side_by_side(tmp_path):
    dataset = write_dataset(tmp_path / "ds", conversations=30)
    model = write_tiny_model(tmp_path / "tiny")
    out = tmp_path / "compare"
    result = run_doppel(["compare", dataset, "-o", out, "--quick", "--model", model],
                        timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "lora" / "adapter").is_dir() and (out / "full" / "model").is_dir()
    runs = read_results(out / "eval").runs
    assert sorted(r.training["method"] for r in runs) == ["full", "lora"]
    for run in runs:
        assert run.training["trainable_params"] > 0 and run.training["wall_s"] > 0
    lora, full = sorted(runs, key=lambda r: r.training["method"], reverse=True)
    assert lora.training["trainable_params"] < full.training["trainable_params"]
    report = (out / "eval" / "report.md").read_text()
    assert "lora" in report and "full" in report

    again = run_doppel(["compare", dataset, "-o", out], timeout=120)
    assert again.returncode == 2 and "--force" in again.stderr
