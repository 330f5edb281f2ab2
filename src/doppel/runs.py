"""The run folder contract: what `doppel train` writes and chat, serve and eval load.

`load_run` accepts a run folder or any model spec, so every consumer can compare a fine-tuned
model with its base through the same door.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError

RUN_SCHEMA_VERSION = 1
RUN_INFO = "run.json"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
TOKENIZER_DIR = "tokenizer"
METRICS = "metrics.jsonl"


@dataclass
class RunInfo:
    """What a model is: its base, how it was trained, whom it knows and can play."""

    base_model: str
    method: str | None = None  # None for a base model loaded without a run folder
    me: dict[str, str] | None = None
    speakers: list[str] = field(default_factory=list)
    trained_speakers: list[str] = field(default_factory=list)
    max_length: int = 2048
    dataset: dict[str, Any] = field(default_factory=dict)
    finished: bool = True
    path: Path | None = None

    @property
    def is_base(self) -> bool:
        return self.method is None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": RUN_SCHEMA_VERSION,
            "base_model": self.base_model,
            "method": self.method,
            "me": self.me,
            "speakers": self.speakers,
            "trained_speakers": self.trained_speakers,
            "max_length": self.max_length,
            "dataset": self.dataset,
            "finished": self.finished,
        }


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    info: RunInfo


def is_run_dir(path: Path) -> bool:
    return (Path(path) / RUN_INFO).is_file()


def read_run_info(run_dir: Path) -> RunInfo:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise DoppelError(f"run folder {run_dir} does not exist; create it with `doppel train`")
    if not is_run_dir(run_dir):
        raise DoppelError(
            f"{run_dir} is not a doppel run folder (no {RUN_INFO}); create it with `doppel train`"
        )
    raw = json.loads((run_dir / RUN_INFO).read_text(encoding="utf-8"))
    if raw.get("schema_version") != RUN_SCHEMA_VERSION:
        raise DoppelError(
            f"{run_dir} has run schema {raw.get('schema_version')!r}, expected {RUN_SCHEMA_VERSION}"
        )
    raw.pop("schema_version")
    return RunInfo(**raw, path=run_dir)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def load_run(spec: str | Path, merge: bool = False, dtype=None) -> Loaded:
    """Model, tokenizer and info from a run folder, or from a base model spec."""
    from doppel.models import load_model, load_tokenizer, resolve_model

    path = Path(spec)
    if not is_run_dir(path):
        if path.is_dir() and not (path / "config.json").is_file() and (path / ADAPTER_DIR).exists():
            raise DoppelError(f"{path} looks like an unfinished run folder (no {RUN_INFO})")
        folder = resolve_model(str(spec))
        tokenizer = load_tokenizer(folder)
        return Loaded(
            load_model(folder, tokenizer, dtype), tokenizer, RunInfo(base_model=str(spec))
        )
    info = read_run_info(path)
    tokenizer = load_tokenizer(path / TOKENIZER_DIR)
    if (path / MODEL_DIR).is_dir():
        model = load_model(path / MODEL_DIR, tokenizer, dtype)
    else:
        from peft import PeftModel

        base = load_model(resolve_model(info.base_model), tokenizer, dtype)
        model = PeftModel.from_pretrained(base, path / ADAPTER_DIR)
        if merge:
            model = model.merge_and_unload()
    model.eval()
    return Loaded(model, tokenizer, info)
