"""doppel train: recipes, bad input, LoRA on the embedded model, FSDP over 2 processes, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from builders import run_cli, write_dataset
from doppel.train.config import load_config, recipe_names

REPO = Path(__file__).resolve().parents[1]
DOPPEL = [sys.executable, "-m", "doppel"]


def doppel(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DOPPEL, *map(str, args)], capture_output=True, text=True, timeout=900, **kwargs
    )


@pytest.mark.parametrize("name", recipe_names())
def test_every_shipped_recipe_loads_and_documents_its_cost(name):
    config = load_config(name, {})
    assert config.expected_memory and config.expected_time
    text = (REPO / "src/doppel/train/recipes" / f"{name}.yaml").read_text()
    assert text.startswith("#") and "doppel train" in text.splitlines()[1]


def test_recipes_cover_the_reference_runs():
    assert {"cpu-demo", "mistral-7b-qlora-24gb", "mistral-7b-full-fsdp"} <= set(recipe_names())
    full = load_config("mistral-7b-full-fsdp", {})
    assert (
        full.method,
        full.fsdp,
        full.max_length,
        full.micro_batch_size,
        full.epochs,
        full.nproc,
    ) == ("full", True, 1024, 2, 3, 8)


def test_flags_override_recipes_and_conflicts_are_rejected():
    assert load_config("cpu-demo", {"lora_r": 4, "model": None}).lora_r == 4
    from doppel.errors import DoppelError

    with pytest.raises(DoppelError, match="fsdp"):
        load_config("cpu-demo", {"fsdp": True})


def train_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """`doppel train ARGS` in this process (run_cli): these paths need no process of their own."""
    return run_cli(["train", *map(str, args)], monkeypatch, capsys)


def assert_one_line_error(done: tuple[int, str, str], needle: str) -> None:
    code, _, err = done
    assert code == 2 and needle in err, err
    assert "Traceback" not in err, err


def test_unknown_recipe_key_is_named(tmp_path, dataset, monkeypatch, capsys):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(yaml.safe_dump({"method": "lora", "lerning_rate": 1e-4}))
    assert_one_line_error(train_cli(monkeypatch, capsys, dataset, "-o", tmp_path / "run",
                                    "--recipe", recipe), "lerning_rate")


def test_bad_inputs_get_one_line_errors(tmp_path, dataset, monkeypatch, capsys):
    old = tmp_path / "old"
    write_dataset(old, conversations=3)
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 0}))
    cases = [((old, "-o", tmp_path / "r1"), "schema version"),
             ((tmp_path / "nowhere", "-o", tmp_path / "r2"), "does not exist"),
             ((dataset, "-o", tmp_path / "r3", "--model", "no-such-model"), "embedded name"),
             ((dataset, "-o", tmp_path / "r4", "--lora-r", "0"), "--lora-r 0"),
             ((dataset, "-o", tmp_path / "r5", "--recipe", "nope"), "unknown recipe"),
             ((dataset, "-o", tmp_path / "r6", "--train-on", "Nobody"), "Nobody")]
    for args, needle in cases:
        assert_one_line_error(train_cli(monkeypatch, capsys, *args), needle)
    for run in ("r1", "r2", "r3", "r4", "r5", "r6"):
        assert not (tmp_path / run).exists()


def test_dry_run_plans_without_writing(tmp_path, dataset, monkeypatch, capsys):
    code, out, err = train_cli(monkeypatch, capsys, dataset, "-o", tmp_path / "run", "--dry-run")
    assert code == 0, err
    assert "train_windows" in out and "memory per device" in out
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_lora_lowers_loss_and_the_run_folder_reloads_and_generates(tmp_path, dataset):
    import torch

    from doppel.chatformat import ChatEncoder, group_turns
    from doppel.data.dataset import load_dataset
    from doppel.runs import load_run

    run = tmp_path / "run"
    result = doppel(
        "train",
        dataset,
        "-o",
        run,
        "--max-steps",
        "8",
        "--learning-rate",
        "1e-3",
        "--micro-batch-size",
        "4",
        "--max-length",
        "256",
    )
    assert result.returncode == 0, result.stderr
    assert {"adapter", "tokenizer", "run.json", "recipe.yaml", "metrics.jsonl", "loss.png"} <= {
        p.name for p in run.iterdir()
    }

    base, tuned = load_run("smollm2-135m"), load_run(run)
    turns = [
        group_turns((m.speaker, m.text) for m in c.messages)
        for c in load_dataset(dataset).conversations("train")
    ]
    encoder = ChatEncoder(tuned.tokenizer)
    windows = [w for t in turns[:6] for w in encoder.encode(t, {"Alex"}, 256)]

    def loss(model) -> float:
        with torch.no_grad():
            return sum(
                model(
                    input_ids=torch.tensor([w.input_ids]), labels=torch.tensor([w.labels])
                ).loss.item()
                for w in windows
            ) / len(windows)

    assert loss(tuned.model) < loss(base.model) - 0.3
    lora_b = [p for n, p in tuned.model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # LoRA B starts at zero: it learned
    base_weight = dict(base.model.named_parameters())["model.layers.0.self_attn.q_proj.weight"]
    tuned_weight = tuned.model.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight
    assert torch.equal(base_weight.float(), tuned_weight.float())  # the base stays frozen

    prompt = encoder.prompt(group_turns([("Sam", "What's up?")]), "Alex", 256)
    out = tuned.model.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False)
    assert out.shape[1] > len(prompt)
    summary = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["summary"]
    assert summary["trainable_params"] > 0 and summary["peak_memory_mb"] > 0


@pytest.mark.slow
def test_full_fine_tuning_with_fsdp_over_two_processes_consolidates(tmp_path, dataset, tiny_model):
    import torch

    from doppel.runs import load_run

    run, logits_path = tmp_path / "run", tmp_path / "logits.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(REPO / "tests/fsdp_worker.py"),
            str(dataset),
            str(tiny_model),
            str(run),
            str(logits_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = torch.load(logits_path)
    assert recorded["sharded"] > 0
    loaded = load_run(run)
    assert (run / "model" / "model.safetensors").is_file() and not (run / "adapter").exists()
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.arange(5, 37).unsqueeze(0)).logits
    torch.testing.assert_close(logits, recorded["logits"], rtol=1e-4, atol=1e-4)
    untrained = load_run(str(tiny_model)).model
    with torch.no_grad():
        assert not torch.allclose(
            untrained(input_ids=torch.arange(5, 37).unsqueeze(0)).logits, logits
        )


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
def test_resume_after_kill_9_continues_the_same_loss_curve(tmp_path, dataset, tiny_model):
    args = [
        "--model",
        tiny_model,
        "--method",
        "full",
        "--max-steps",
        "10",
        "--save-steps",
        "3",
        "--micro-batch-size",
        "2",
        "--max-length",
        "128",
        "--learning-rate",
        "1e-3",
        "--precision",
        "fp32",
    ]
    straight = tmp_path / "straight"
    assert doppel("train", dataset, "-o", straight, *args, "--logging-steps", "1").returncode == 0

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [
            *DOPPEL,
            "train",
            str(dataset),
            "-o",
            str(killed),
            *map(str, args),
            "--logging-steps",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "checkpoint-6" / "trainer_state.json").exists():
        assert process.poll() is None and time.time() < deadline, "training ended before the kill"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "run.json").exists()
    resumed = doppel("train", dataset, "-o", killed, *args, "--logging-steps", "1", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    expected, got = _losses(straight), _losses(killed)
    assert sorted(got) == sorted(expected) == list(range(1, 11))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], rel=1e-4), step
