"""Shared fixtures: a tiny LoRA run folder in the run contract's shape (fast, local, untrained)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from builders import write_dataset, write_tiny_model
from doppel.chatformat import IM_END
from doppel.runs import ADAPTER_DIR, RUN_INFO, TOKENIZER_DIR, Loaded, RunInfo

# Converted models go to a folder of this test session, never the user's ~/.cache/doppel. Set
# before any test runs, so every test and every `doppel` subprocess (they inherit it) shares it:
# the embedded model is converted once per session. pytest-xdist's workers inherit the folder
# the main process made (the conversion holds a lock, so the first worker converts, the other
# waits), and only the main process removes it.
SESSION_CACHE = os.environ.get("DOPPEL_TEST_SESSION_CACHE") or tempfile.mkdtemp(
    prefix="doppel-test-cache-")
os.environ["DOPPEL_TEST_SESSION_CACHE"] = SESSION_CACHE
os.environ["DOPPEL_CACHE"] = SESSION_CACHE


# The slowest files first (idle seconds, docs/benchmarks.md "Test suite"), so `make test`'s two
# pytest-xdist workers (--dist loadfile: a file stays on one worker) start the two longest at
# once and share out the short ones last, instead of one worker ending alone on a long file.
HEAVY_FIRST = ("test_readme.py", "test_export.py", "test_demo.py", "test_train_distributed.py",
               "test_offline_node.py", "test_train.py", "test_memory_readme.py",
               "test_prefer.py", "test_serve_llamacpp.py", "test_eval_ranking.py",
               "test_canaries.py", "test_bench_gpu.py")


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within files


def pytest_sessionfinish(session, exitstatus) -> None:
    if not hasattr(session.config, "workerinput"):  # the main process, xdist or not
        shutil.rmtree(SESSION_CACHE, ignore_errors=True)


def write_adapter_run(path: Path, base_dir: Path, dataset_dir: Path, max_length: int = 256,
                      targets: str | list[str] = "all-linear") -> Path:
    """A run folder with an untrained but non-zero LoRA adapter, so adapter and base differ.
    targets: the adapted modules (["lm_head", ...] lets a tiny model's adapter move its
    next-token odds directly)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from doppel.data.dataset import load_dataset
    from doppel.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(base_dir)
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    model = get_peft_model(load_model(base_dir, tokenizer), config)
    path.mkdir(parents=True)
    model.save_pretrained(path / ADAPTER_DIR)
    tokenizer.save_pretrained(path / TOKENIZER_DIR)
    manifest = load_dataset(dataset_dir).manifest
    names = [s["name"] for s in manifest["speakers"].values()]
    info = RunInfo(base_model=str(base_dir), method="lora", me=manifest["me"], speakers=names,
                   trained_speakers=names, max_length=max_length,
                   dataset={"path": str(dataset_dir), "fingerprint": manifest["fingerprint"]})
    (path / RUN_INFO).write_text(json.dumps(info.to_json()), encoding="utf-8")
    return path


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """`build(folder)` once per test run, even with pytest-xdist's workers: the first builds it
    in a folder all workers share, under a lock; the others wait, then read what it built."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    folder, done = shared / f"once-{name}", shared / f"once-{name}.done"
    with FileLock(shared / f"once-{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_text(str(build(folder)), encoding="utf-8")
    return Path(done.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def embedded_twin(tmp_path_factory) -> Path:
    """A LoRA run (non-zero adapter, max_length 512) on the embedded SmolLM2-135M, built once per
    test run for the tests that need a real model's run: export, serve --engine llama.cpp and the
    README's bot lines. Read-only: a test that changes a run copies it first."""
    from export_models import write_embedded_run

    return built_once(tmp_path_factory, "embedded-twin",
                      lambda folder: write_embedded_run(folder, "smollm2-135m"))


@pytest.fixture(scope="session")
def embedded_twin_gguf(embedded_twin, tmp_path_factory) -> Path:
    """embedded_twin exported as `doppel export RUN -o twin.gguf` writes it (f16), once."""
    from doppel.export.pipeline import ExportOptions, export_run

    def export(folder: Path) -> Path:
        export_run(embedded_twin, folder / "twin.gguf", ExportOptions(progress=False))
        return folder / "twin.gguf"

    return built_once(tmp_path_factory, "embedded-twin-gguf", export)


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory) -> Path:
    """RUN_DIR of a 2-layer Llama + LoRA adapter; speakers Alex (me) and Sam."""
    root = tmp_path_factory.mktemp("tiny-run")
    base = write_tiny_model(root / "base")
    dataset = write_dataset(root / "dataset", conversations=12)
    return write_adapter_run(root / "run", base, dataset)


class ScriptedLM:
    """A stand-in causal LM that greedily 'says' a fixed token sequence, counting its steps."""

    def __init__(self, script: list[int], vocab: int) -> None:
        self.script, self.vocab, self.steps = script, vocab, 0
        self.config = SimpleNamespace(max_position_embeddings=4096)

    def __call__(self, input_ids, cache=None, use_cache=True, logits_to_keep=0, **_):
        import torch

        self.steps = 0 if input_ids.shape[1] > 1 else self.steps + 1
        logits = torch.zeros(1, 1, self.vocab)
        logits[0, 0, self.script[min(self.steps, len(self.script) - 1)]] = 100.0
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="session")
def chat_tokenizer():
    """The embedded model's tokenizer with the chat tokens."""
    from doppel.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model("smollm2-135m"))


@pytest.fixture
def scripted_engine(chat_tokenizer):
    """make(text) -> an Engine (Alex = me, Sam) whose model writes `text`, then hands over."""
    from doppel.infer.engine import Engine

    def make(text: str, then: str = "and more text", speakers=("Alex", "Sam")):
        script = chat_tokenizer.encode(text + IM_END + then, add_special_tokens=False)
        model = ScriptedLM(script, len(chat_tokenizer))
        info = RunInfo(base_model="scripted", method="lora", me={"id": "u1", "name": speakers[0]},
                       speakers=list(speakers), trained_speakers=list(speakers))
        return Engine(Loaded(model, chat_tokenizer, info))

    return make


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory):
    """The bundled sample export, prepared with default options (the demo's data)."""
    from doppel.data.dataset import load_dataset
    from doppel.data.options import PrepareOptions
    from doppel.data.pipeline import prepare_dataset
    from doppel.sample import write_sample_export

    root = tmp_path_factory.mktemp("sample")
    export = write_sample_export(root / "export")
    prepare_dataset(export, root / "dataset", PrepareOptions(), progress=False)
    return load_dataset(root / "dataset")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A 24-conversation dataset folder (Alex = me, Sam), one per test module."""
    return write_dataset(tmp_path_factory.mktemp("data") / "ds", conversations=24)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 2-layer Llama folder with the embedded tokenizer, one per test module."""
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def memory_dataset(tmp_path_factory) -> Path:
    """tests/memory_builders.py's dataset (Sam's secret, Jo's cat, a group) with its memory
    index, once per session; a test that adds to the index copies it first."""
    from doppel.memory import build_index
    from memory_builders import write_memory_dataset

    path = write_memory_dataset(tmp_path_factory.mktemp("memory") / "dataset")
    build_index(path, progress=False)
    return path


# the blind test's session fixtures (a two-friend run and a test prepared once)
from blindtest_builders import prepared, two_chats  # noqa: E402, F401
