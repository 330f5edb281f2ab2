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
