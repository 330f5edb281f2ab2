"""README's memory lines, typed as a user types them, on a tiny run trained (untrained LoRA) on
tests/memory_builders.py's dataset: chat shows the memories a reply read (Sam's secret for Sam,
never for Jo), serve's API lists them, and bad input is one line."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from builders import run_cli, run_doppel, write_tiny_model
from conftest import write_adapter_run
from memory_builders import SECRET
from test_memory_use import QUESTION
from test_readme import COMMANDS, _free_port, served

pytestmark = pytest.mark.slow
LINES = [c for c in COMMANDS if c.text.startswith("doppel chat out/run --me Sam")]


@pytest.fixture(scope="module")
def world(tmp_path_factory, memory_dataset) -> Path:
    """A folder holding out/dataset (with its memory index) and out/run, as the README has."""
    root = tmp_path_factory.mktemp("memory-readme")
    dataset = shutil.copytree(memory_dataset, root / "out" / "dataset")
    write_adapter_run(root / "out" / "run", write_tiny_model(root / "base"), dataset)
    return root


def _chat(world: Path, words, *, lines=(QUESTION,)):
    """`doppel WORDS...` in the world's folder, the lines typed on stdin, then Ctrl-D."""
    return run_doppel(list(words), cwd=world, input="".join(f"{x}\n" for x in lines),
                      timeout=600)


def _remembered(out: str) -> str:
    return "\n".join(line for line in out.splitlines() if line.strip().startswith("remembered"))


def test_readme_memory_chat_lines(world):
    assert len(LINES) == 3, [c.text for c in LINES]
    for line in LINES:
        done = _chat(world, line.words[1:])
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
        remembered = _remembered(done.stdout)
        if "off" in line.words:
            assert not remembered and "memory off" in done.stderr
        else:  # Sam asks about Sam's own secret: it is remembered, with date and chat
            assert SECRET in remembered and 'chat Sam' in remembered, done.stdout
    # the same line as Jo: Jo's chats only, never Sam's secret (and --memory-scope all is needed
    # for it, the owner's explicit choice)
    done = _chat(world, ["chat", "out/run", "--me", "Jo"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert _remembered(done.stdout) and SECRET not in done.stdout


def test_readme_memory_serve_line(world):
    (line,) = [c for c in COMMANDS if c.text.startswith("doppel serve out/run --data")]
    port = _free_port()
    argv = [sys.executable, "-m", "doppel", *line.words[1:], "--port", str(port)]
    with served(argv, port, cwd=world, env=os.environ.copy()) as base:
        def ask(name: str) -> list:
            reply = httpx.post(f"{base}/v1/chat/completions", timeout=120, json={
                "model": "doppel/Alex", "max_tokens": 4,
                "messages": [{"role": "user", "name": name, "content": QUESTION}]})
            assert reply.status_code == 200, reply.text
            return reply.json()["choices"][0]["message"]["doppel"]["memories"]

        assert any(SECRET in text for m in ask("Sam") for _, text in m["lines"])
        jo = ask("Jo")
        assert jo and SECRET not in str(jo) and all("Jo" in m["participants"] for m in jo)


def test_memory_bad_input_is_one_line(world, tmp_path):
    done = _chat(world, ["chat", "out/run", "--memory", "on", "--data", "out/nowhere"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "out/nowhere does not exist" in done.stderr
    # a dataset from before memory: by default a hint, and memory stays off...
    old = shutil.copytree(world / "out" / "dataset", tmp_path / "old")
    (old / "memory.sqlite").unlink()
    done = _chat(world, ["chat", "out/run", "--me", "Sam", "--data", old])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no memory index" in done.stdout + done.stderr and not (old / "memory.sqlite").exists()
    # ...and --memory on builds it, saying so
    done = _chat(world, ["chat", "out/run", "--me", "Sam", "--data", old, "--memory", "on"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "building" in done.stderr and SECRET in _remembered(done.stdout)
    # a file that is not an index: one line, exit 2
    (old / "memory.sqlite").write_bytes(b"not sqlite at all" * 100)
    done = _chat(world, ["chat", "out/run", "--me", "Sam", "--data", old])
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "Traceback" not in done.stderr


def test_readme_memory_forget_lines(world, tmp_path, monkeypatch, capsys):
    """The README's forget lines, in order, in a copy of the world: the preview writes nothing,
    then Sam's secret leaves search and chat, Jo's early stretches go and Jo's later ones stay;
    the listing shows dates and chats, never the text."""
    lines = [c for c in COMMANDS if c.text.startswith("doppel memory forget ")]
    assert len(lines) == 4, [c.text for c in lines]
    home = shutil.copytree(world, tmp_path / "home")
    monkeypatch.chdir(home)
    record = home / "out" / "dataset" / "forgotten.jsonl"

    def doppel(*words) -> str:
        code, out, err = run_cli(list(words), monkeypatch, capsys)
        assert code == 0 and "Traceback" not in err, err
        return out

    def found(words: str) -> str:
        return doppel("memory", "search", "out/dataset", words, "-k", "20").replace(words, "")

    assert SECRET in found("vault code 4417") and "homework" in found("Pickles homework")
    preview, forget, early, listing = (doppel(*line.words[1:]) for line in lines)
    assert "Sam [user2]" in preview and "add --yes" in preview and SECRET not in preview
    assert "forgot" in forget and "forgot" in early and record.is_file()
    assert SECRET not in found("vault code 4417 zebra")
    assert "homework" not in found("Pickles homework") and "sick" in found("Pickles sick")
    assert "Jo [user3]" in listing and "2023-11-1" in listing and "before" in listing
    said = record.read_text(encoding="utf-8") + listing
    assert not any(word in said for word in (SECRET, "vault", "zebra", "homework"))
    # the twin's replies no longer read it: Sam asks about the secret, chat shows no memory of it
    code, out, err = run_cli(["chat", "out/run", "--me", "Sam", "--data", "out/dataset"],
                             monkeypatch, capsys, input=f"{QUESTION}\n")
    assert code == 0, err[-3000:]
    remembered = _remembered(out)
    assert "chat Sam" in remembered and "memory on" in err  # memory was read...
    assert SECRET not in out and "zebra" not in out  # ...without the forgotten stretch
