"""The package's one upward rule: only cli.py imports the command modules."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "doppel"
IMPORTS_COMMANDS = re.compile(r"^\s*(from doppel\.commands|import doppel\.commands|from doppel "
                              r"import commands|from \.+commands)", re.M)


def test_nothing_but_the_cli_imports_commands():
    offenders = [str(path.relative_to(SRC)) for path in sorted(SRC.rglob("*.py"))
                 if path.name != "cli.py" and IMPORTS_COMMANDS.search(path.read_text("utf-8"))]
    assert offenders == []
    assert IMPORTS_COMMANDS.search("    from doppel.commands.chat import command\n")


IMPORTS_ABOVE_MEMORY = re.compile(
    r"^\s*(from|import) doppel\.(train|infer|bot|eval|commands)\b|"
    r"^\s*from doppel import (train|infer|bot|eval|commands)\b|^\s*from \.\.(train|infer|bot|"
    r"eval|commands)\b", re.M)


def test_memory_sits_below_everything_that_speaks():
    """memory/ is read by train, infer, bot and eval, so it imports none of them (nor commands)."""
    offenders = [str(path.relative_to(SRC)) for path in sorted((SRC / "memory").rglob("*.py"))
                 if IMPORTS_ABOVE_MEMORY.search(path.read_text("utf-8"))]
    assert offenders == []
    assert IMPORTS_ABOVE_MEMORY.search("    from doppel.infer.base import Engine\n")
    assert IMPORTS_ABOVE_MEMORY.search("import doppel.eval\n")
    assert not IMPORTS_ABOVE_MEMORY.search("from doppel.data.dataset import Dataset\n")
