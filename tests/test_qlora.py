"""QLoRA on a CPU through the CLI: bitsandbytes' 4-bit NF4 base trains a LoRA adapter, and the run
folder reloads for `doppel chat` (typed, as the README shows) and `doppel eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builders import write_dataset, write_tiny_model

REPO = Path(__file__).resolve().parents[1]


def doppel(*args, stdin: str | None = None, cwd: Path | None = None):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "doppel", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


@pytest.mark.slow
def test_qlora_on_cpu_trains_then_reloads_for_chat_and_eval(tmp_path):
    import torch
    from safetensors.torch import load_file

    pytest.importorskip("bitsandbytes")
    data = write_dataset(tmp_path / "data", conversations=24)
    model = write_tiny_model(tmp_path / "tiny")
    run = tmp_path / "run"
    trained = doppel("train", data, "-o", run, "--model", model, "--method", "qlora",
                     "--max-steps", "6", "--max-length", "128", "--micro-batch-size", "2",
                     "--learning-rate", "1e-2", "--logging-steps", "1")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["method"] == "qlora"
    summary = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["summary"]
    assert summary["base_weights"] == "nf4"  # the frozen base really was 4-bit while training
    assert 0 < summary["trainable_params"] < 200_000
    adapter = load_file(run / "adapter" / "adapter_model.safetensors")
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # B starts at zero: it learned
    assert not (run / "model").exists()  # only the adapter is saved, never the base
    losses = [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if "loss" in r]
    assert len(losses) == 6 and all(torch.isfinite(torch.tensor(losses)))

    # `doppel chat RUN`, typed: the user writes as the friend, the model answers as Alex
    chat = doppel("chat", "run", "--max-new-tokens", "4", stdin="hey\n/quit\n", cwd=tmp_path)
    assert chat.returncode == 0, chat.stderr[-3000:]
    assert "Alex:" in chat.stdout and "Traceback" not in chat.stderr

    evaluated = doppel("eval", run, "--data", data, "-o", tmp_path / "eval", "--quick",
                       "--max-contexts", "2", "--max-new-tokens", "4", "--no-transcripts")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["runs"][0]["contexts"] == 2  # the fine-tuned run was scored and replied
