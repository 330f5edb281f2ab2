"""`doppel demo --quick`: the whole product runs, and the fine-tuned model beats its base."""

from __future__ import annotations

import pytest

from builders import run_doppel
from doppel.eval.results import EvalResults
from doppel.eval.store import read_results


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_and_shows_a_real_effect(tmp_path):
    out = tmp_path / "demo"
    result = run_doppel(["demo", "--quick", "-o", out], timeout=2700)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    transcript = (out / "transcript.md").read_text(encoding="utf-8")
    assert "hey" in transcript and "what's up?" in transcript and "Alex Morgan" in transcript
    for path in ("export/result.json", "dataset/manifest.json", "run/run.json", "run/adapter",
                 "eval/report.html", "eval/report.md", "eval/results.json"):
        assert (out / path).exists(), path
    assert_fine_tuned_beats_base(read_results(out / "eval"))
    assert "doppel serve" in result.stdout


def assert_fine_tuned_beats_base(results: EvalResults, me: str = "Alex Morgan") -> None:
    """Held-out perplexity falls and more replies read as the user's, against the base model."""
    run = results.runs[0]
    assert run.speaker_perplexity[me] < run.base_speaker_perplexity[me]
    assert run.attribution_share[me] > run.base_attribution_share[me]
