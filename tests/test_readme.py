"""The README cannot go stale: every `doppel` command it shows exists and takes the flags shown."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from builders import run_cli

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[list[str]]:
    """`doppel ...` invocations in the README's bash blocks (continuation lines joined)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if " -m doppel " in line:
                line = "doppel " + line.split(" -m doppel ", 1)[1]
            if line.startswith("doppel "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_readme_shows_the_two_commands_and_the_five_steps():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    shown = {command[0] for command in readme_commands()}
    assert {"sample-export", "prepare", "train", "chat", "serve", "eval"} <= shown


@pytest.mark.parametrize("command", readme_commands(), ids=" ".join)
def test_every_readme_command_and_flag_exists(command, monkeypatch, capsys):
    code, out, err = run_cli([command[0], "--help"], monkeypatch, capsys)
    assert code == 0, err
    for flag in (arg.split("=")[0] for arg in command if arg.startswith("--")):
        assert flag in out, f"{flag} is not an option of doppel {command[0]}"
