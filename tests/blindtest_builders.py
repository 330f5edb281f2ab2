"""A two-friend dataset with a planted secret, a tiny run trained on it (untrained adapter), and
a prepared blind test: what the blind test's tests share (session fixtures, via conftest)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builders import run_cli, write_tiny_model
from conftest import write_adapter_run
from doppel.data.dataset import CONVERSATIONS, MANIFEST, SCHEMA_VERSION

ALEX, SAM, JO = ("user1", "Alex"), ("user2", "Sam"), ("user3", "Jo")
SECRET = "vault code 7319"  # said only in Jo's chat: Sam's link must never show it
MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)><b>bold</b>'


def _msg(speaker: tuple[str, str], t: float, text: str) -> dict:
    return {"speaker_id": speaker[0], "speaker": speaker[1], "time": t, "text": text}


def write_two_chats(path: Path, conversations: int = 20) -> Path:
    """Alex's chats with Sam and with Jo, alternating; the last half held out. Jo's chat holds
    the secret (and Alex repeats it); Sam's holds HTML and script payloads."""
    path.mkdir(parents=True, exist_ok=True)
    rows, t = [], 1_700_000_000.0
    for index in range(conversations):
        friend = SAM if index % 2 == 0 else JO
        said = SECRET if friend == JO else MARKUP
        lines = [(friend, f"hi alex {index}"), (ALEX, "heyy"), (ALEX, "whats up"),
                 (friend, f"{said}, remember?"), (ALEX, f"ok {said} lol"),
                 (friend, "see you"), (ALEX, "bye!!")]
        messages = []
        for speaker, text in lines:
            t += 30
            messages.append(_msg(speaker, t, text))
        t += 86_400
        rows.append({"id": f"{friend[0]}-{index:04d}",
                     "chat": {"id": friend[0], "name": friend[1], "type": "personal_chat"},
                     "split": "val" if index >= conversations // 2 else "train",
                     "messages": messages})
    (path / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in rows),
                                      encoding="utf-8")
    speakers = {sid: {"name": name, "messages": 0, "chats": [sid if sid != "user1" else "user2"]}
                for sid, name in (ALEX, SAM, JO)}
    manifest = {"schema_version": SCHEMA_VERSION, "me": {"id": ALEX[0], "name": ALEX[1]},
                "speakers": speakers, "fingerprint": f"two-chats-{conversations}"}
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def two_chats(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, dataset folder): a tiny LoRA run that knows Alex, Sam and Jo."""
    root = tmp_path_factory.mktemp("blind")
    dataset = write_two_chats(root / "dataset")
    return write_adapter_run(root / "runs" / "run", write_tiny_model(root / "base"), dataset), \
        dataset


PREPARE = ["--judge", "Sam", "--judge", "Jo", "--judge", "me", "--items", "4",
           "--max-new-tokens", "6", "--no-serve"]


@pytest.fixture(scope="session")
def prepared(two_chats, tmp_path_factory) -> tuple[Path, Path, Path, dict[str, str]]:
    """(run, dataset, store, judge -> link) of a test prepared once through the CLI."""
    run, dataset = two_chats
    monkeypatch = pytest.MonkeyPatch()
    capsys = _Capture()
    try:
        code, out, err = run_cli(["blindtest", run, "--data", dataset, *PREPARE], monkeypatch,
                                 capsys)
    finally:
        capsys.restore()
        monkeypatch.undo()
    assert code == 0, err
    links = dict(line.split(": ", 1) for line in out.splitlines())
    return run, dataset, run.parent / "run.blindtest.sqlite", links


class _Capture:
    """capsys for a module-scoped fixture: stdout and stderr of `run_cli`."""

    def __init__(self) -> None:
        import io
        import sys

        self.out, self.err = io.StringIO(), io.StringIO()
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.out, self.err

    def readouterr(self) -> tuple[str, str]:
        self.restore()
        return self.out.getvalue(), self.err.getvalue()

    def restore(self) -> None:
        import sys

        sys.stdout, sys.stderr = self._saved


def copy_store(store: Path, target: Path) -> Path:
    """A test's own copy of the prepared store (its answers do not leak into other tests)."""
    shutil.copy(store, target)
    return target
