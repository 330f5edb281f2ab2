"""Multi-process `doppel train` as users launch it (torchrun, `--nproc`): a user error on one rank
ends every rank with one line and exit code 2, a killed sharded run resumes on its loss curve, and
every shipped recipe plans (`--dry-run`) for the model it names."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from builders import run_cli, write_hub_cache
from doppel.train.config import load_config, recipe_names

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
DOPPEL = [sys.executable, "-m", "doppel"]
TIMEOUT_S = 600


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", **extra}


def run(argv: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env(), **kwargs)


def no_doppel_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr or "/doppel/" not in stderr.split("Traceback", 1)[1], stderr


@pytest.mark.slow
def test_a_user_error_on_one_rank_ends_every_rank_with_one_line(tmp_path, dataset, tiny_model):
    """The folder check happens on rank 0 alone; rank 1 learns of it at the same collective."""
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    args = ["train", dataset, "-o", taken, "--model", tiny_model, "--method", "full",
            "--max-steps", "2", "--max-length", "128"]
    started = time.monotonic()
    launched = run([*TORCHRUN, "--nproc_per_node", "2", "-m", "doppel", *args])
    assert time.monotonic() - started < 120  # promptly: no rank waits out a timeout
    assert launched.returncode != 0
    first = launched.stderr.lstrip().splitlines()[0]
    assert first.startswith("error: ") and "already exists" in first, launched.stderr
    assert launched.stderr.count("error: ") == 1  # one node: printed once
    # torchrun's summary lists every rank; each ended itself with doppel's exit code
    codes = re.findall(r"exitcode\s*:\s*(-?\d+)", launched.stderr)
    assert codes and set(codes) == {"2"}, launched.stderr
    no_doppel_traceback(launched.stderr)
    assert (taken / "keep.txt").read_text() == "mine" and len(list(taken.iterdir())) == 1

    relaunched = run([*DOPPEL, *args, "--fsdp", "--nproc", "2"])
    assert relaunched.returncode == 2, relaunched.stderr
    assert relaunched.stderr.strip().splitlines() == [first]

    typo = run([*TORCHRUN, "--nproc_per_node", "2", "-m", "doppel", "train", tmp_path / "none",
                "-o", tmp_path / "new"])
    assert typo.stderr.lstrip().startswith("error: ") and "does not exist" in typo.stderr
    assert typo.stderr.count("error: ") == 1 and not (tmp_path / "new").exists()
    no_doppel_traceback(typo.stderr)


@pytest.mark.slow
def test_lora_on_two_processes_through_torchrun(tmp_path, dataset, tiny_model):
    """Data-parallel LoRA: each rank a replica, one adapter saved, the run reloads."""
    from doppel.runs import load_run

    out = tmp_path / "run"
    done = run([*TORCHRUN, "--nproc_per_node", "2", "-m", "doppel", "train", dataset, "-o", out,
                "--model", tiny_model, "--max-steps", "3", "--max-length", "128",
                "--micro-batch-size", "2", "--learning-rate", "1e-2"])
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["summary"]
    assert summary["processes"] == 2 and summary["steps"] == 3 and summary["sharding"] == "none"
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert not (out / "model").exists()
    assert load_run(out).info.method == "lora"


@pytest.mark.slow
def test_the_preference_stage_on_two_processes_splits_the_pairs(tmp_path, dataset, tiny_model):
    """`torchrun ... train DATA --prefer --from RUN`: each rank writes and trains on its share of
    the self-play pairs, the adapter's gradients are added up before every step, and rank 0
    alone writes one run folder and prints once. Two self-play rounds share --max-steps."""
    from safetensors.torch import load_file

    from conftest import write_adapter_run
    from doppel.runs import load_run

    run_dir = write_adapter_run(tmp_path / "run", tiny_model, dataset, max_length=128)
    out = tmp_path / "run2"
    done = run([*TORCHRUN, "--nproc_per_node", "2", "-m", "doppel", "train", dataset,
                "--prefer", "--from", run_dir, "-o", out, "--prefer-pairs", "16",
                "--prefer-rounds", "2", "--epochs", "1", "--max-steps", "3",
                "--learning-rate", "1e-3"])
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("self-play round 1: 16 replies", "DPO on 16 pairs (0 from votes), 1 epochs, "
                 "2 steps on 2 processes", "self-play round 2: 16 replies",
                 "1 epochs, 1 steps on 2 processes"):  # the last step --max-steps leaves
        assert done.stdout.count(line) == 1, done.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["round"]) for r in rows[:-1]] == [(1, 1), (2, 1), (3, 2)]
    summary = rows[-1]["summary"]
    assert (summary["processes"], summary["pairs"], summary["steps"]) == (2, 16, 3)
    before, after = (load_file(folder / "adapter" / "adapter_model.safetensors")
                     for folder in (run_dir, out))
    assert any(not before[key].equal(after[key]) for key in before)
    assert load_run(out).info.method == "lora"


def _losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def _kill_tree(process: subprocess.Popen) -> None:
    """kill -9 the launcher and every worker (torchrun starts each in its own session)."""
    family = [*psutil.Process(process.pid).children(recursive=True)]
    os.kill(process.pid, signal.SIGKILL)
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    psutil.wait_procs(family, timeout=60)


@pytest.mark.slow
def test_killed_two_process_fsdp_run_resumes_on_the_same_loss_curve(tmp_path, dataset,
                                                                   tiny_model):
    args = ["train", dataset, "--recipe", "cpu-full", "--fsdp", "--model", tiny_model,
            "--max-steps", "12", "--save-steps", "3", "--micro-batch-size", "2",
            "--max-length", "128", "--learning-rate", "1e-3", "--logging-steps", "1"]
    launch = [*TORCHRUN, "--nproc_per_node", "2", "-m", "doppel"]
    straight = run([*launch, *args, "-o", tmp_path / "straight"])
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed = tmp_path / "killed"
    process = subprocess.Popen([str(a) for a in [*launch, *args, "-o", killed]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline = time.time() + TIMEOUT_S
    try:
        while not (killed / "checkpoints" / "checkpoint-3" / "trainer_state.json").exists():
            assert process.poll() is None and time.time() < deadline, "ended before the kill"
            time.sleep(0.05)
    finally:
        _kill_tree(process)
    assert not (killed / "run.json").exists()
    shards = list((killed / "checkpoints" / "checkpoint-3").rglob("*.distcp"))
    assert len(shards) >= 2  # a sharded checkpoint: one file per rank at least

    resumed = run([*launch, *args, "-o", killed, "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = _losses(tmp_path / "straight"), _losses(killed)
    assert sorted(got) == sorted(expected) == list(range(1, 13))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], rel=1e-4), step
    summary = json.loads((killed / "metrics.jsonl").read_text().splitlines()[-1])["summary"]
    assert summary["processes"] == 2 and summary["steps"] == 12

    nothing = run([*launch, *args, "-o", tmp_path / "empty", "--resume"])
    assert nothing.stderr.lstrip().startswith("error: nothing to resume")
    no_doppel_traceback(nothing.stderr)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    return write_hub_cache(tmp_path_factory.mktemp("hub"))


@pytest.mark.parametrize("recipe", recipe_names())
def test_dry_run_of_every_shipped_recipe_plans_for_its_model(tmp_path, dataset, hub_cache,
                                                            recipe, monkeypatch, capsys):
    """Each recipe's model as a user's HF cache holds it (configs here, no weights). In this
    process (a dry run loads no weights; the README's dry-run line runs as a process of its own
    in test_readme): HF_HUB_CACHE as the hub client read it at import."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    code, out, err = run_cli(["train", dataset, "-o", tmp_path / "run", "--recipe", recipe,
                              "--dry-run"], monkeypatch, capsys)
    assert code == 0, err[-3000:]
    assert "memory per device" in out and "recipe expects" in out
    assert not (tmp_path / "run").exists()
    # the recipe's documented memory agrees with the estimate for the device it names
    expected = load_config(recipe, {}).expected_memory
    documented = float(re.search(r"~([\d.]+) GB", expected).group(1))
    row = "memory per CUDA GPU" if "GPU" in expected else "memory per device"
    estimate = float(re.search(rf"{row}[^\n]*?([\d.]+) GB", out).group(1))
    assert abs(estimate - documented) <= 0.3 * documented, (recipe, estimate, expected)
