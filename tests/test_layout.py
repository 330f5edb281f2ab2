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


# --- import circles (issue 19) ---------------------------------------------------------------
# Every import counts, at module level, inside functions and under TYPE_CHECKING alike: a circle
# that only closes at run time is still two modules that cannot be understood one at a time.

def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """doppel module -> the doppel modules it imports (a `from package import name` counts as
    the submodule when `name` is one, else as the package)."""
    import ast

    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def circles(graph: dict[str, set[str]], prefix: str) -> list[list[str]]:
    """The import circles among modules named prefix*: each as a path back to its start."""
    import networkx as nx

    inside = nx.DiGraph((a, b) for a, deps in graph.items() for b in deps
                        if a.startswith(prefix) and b.startswith(prefix))
    return sorted(sorted(cycle) for cycle in nx.simple_cycles(inside))


def test_eval_has_no_import_circle():
    """results.py is data only; metrics, report and runner import it, never the reverse (the old
    circle was generate -> ranking -> results -> transcripts -> generate)."""
    assert circles(import_graph(), "doppel.eval") == []
    graph = import_graph()
    assert graph["doppel.eval.results"] <= {"doppel.eval.bootstrap", "doppel.eval.options"}
    assert graph["doppel.eval.metric"] == set()
    # the check sees a circle when there is one
    assert circles({"doppel.eval.a": {"doppel.eval.b"}, "doppel.eval.b": {"doppel.eval.a"}},
                   "doppel.eval") == [["doppel.eval.a", "doppel.eval.b"]]
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
