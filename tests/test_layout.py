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


IMPORTS_EXPORT = re.compile(r"^\s*(from doppel\.export|import doppel\.export|from doppel import "
                            r"export|from \.\.export)\b", re.M)


def test_infer_never_imports_export():
    """One direction: export/ checks its output with infer/'s engine, so infer/ may not export
    (a run for --engine llama.cpp is exported by doppel/engines.py before the engine loads)."""
    offenders = [str(path.relative_to(SRC)) for path in sorted((SRC / "infer").rglob("*.py"))
                 if IMPORTS_EXPORT.search(path.read_text("utf-8"))]
    assert offenders == []
    assert IMPORTS_EXPORT.search("        from doppel.export.pipeline import export_run\n")
    assert not IMPORTS_EXPORT.search("    a .gguf from `doppel export`\n")
