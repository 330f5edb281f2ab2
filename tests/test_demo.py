"""`doppel demo --quick`: the whole product runs, and the fine-tuned model beats its base."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_and_shows_a_real_effect(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "doppel", "demo", "--quick", "-o", str(out)],
                            capture_output=True, text=True, timeout=2700)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    transcript = (out / "transcript.md").read_text(encoding="utf-8")
    assert "hey" in transcript and "what's up?" in transcript and "Alex Morgan" in transcript
    for path in ("export/result.json", "dataset/manifest.json", "run/run.json", "run/adapter",
                 "eval/report.html", "eval/report.md", "eval/results.json"):
        assert (out / path).exists(), path
    assert_fine_tuned_beats_base(json.loads((out / "eval" / "results.json").read_text()))
    assert "doppel serve" in result.stdout


def assert_fine_tuned_beats_base(results: dict, me: str = "Alex Morgan") -> None:
    """Held-out perplexity falls and more replies read as the user's, against the base model."""
    run = results["runs"][0]
    perplexity, attribution = run["perplexity"]["speakers"][me], run["attribution"][me]
    assert perplexity["fine_tuned"] < perplexity["base"]
    assert attribution["fine_tuned"] > attribution["base"]
