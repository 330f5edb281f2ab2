"""What `--engine llama.cpp RUN_OR_GGUF` loads: a .gguf from `doppel export`, an export folder
(gguf or ollama format), or a run folder.

A run folder is exported to GGUF once, into RUN.llama.cpp/ next to it (never inside the run
folder, whose contents are the run contract), and re-exported only when the run changed since:
a user who trained a run expects `doppel serve --engine llama.cpp out/run` to serve it, as the
torch engine does, and the export is the same `doppel export` would write (f16). For a run, its
own tokenizer and run.json are used; for a GGUF alone, the tokenizer inside the file and the run
info `doppel export` wrote into its metadata (ggufinfo.py). It lives in export/ so that infer/
never exports: doppel/engines.py resolves the source, then infer/'s LlamaEngine loads it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from doppel.errors import DoppelError
from doppel.runs import TOKENIZER_DIR, RunInfo, is_run_dir

CACHE_SUFFIX = ".llama.cpp"
CACHED_GGUF = "model.gguf"
WHAT = "a .gguf file from `doppel export`, an export folder, or a run folder"


@dataclass
class GGUFSource:
    gguf: Path
    tokenizer: object
    info: RunInfo


def resolve(spec: str) -> GGUFSource:
    """The GGUF to run, the tokenizer for its prompts and the run info for its personas."""
    path = Path(spec)
    if not path.exists():
        raise DoppelError(f"{spec} does not exist; --engine llama.cpp serves {WHAT}")
    if is_run_dir(path):
        return _from_run(path)
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) != 1:
            many = f"{len(found)} .gguf files" if found else "no .gguf file"
            raise DoppelError(f"{path} holds {many}; --engine llama.cpp serves {WHAT}")
        path = found[0]
    if path.suffix != ".gguf":
        raise DoppelError(f"{path} is not a .gguf file; --engine llama.cpp serves {WHAT}")
    return _from_gguf(path)


def _from_gguf(path: Path) -> GGUFSource:
    from transformers import AutoTokenizer

    from doppel.chatformat import ensure_chat_tokens
    from doppel.export.ggufinfo import read_run_info

    info = read_run_info(path)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    ensure_chat_tokens(tokenizer)
    return GGUFSource(path, tokenizer, info)


def cached_export(run: Path) -> Path:
    return run.parent / f"{run.name}{CACHE_SUFFIX}" / CACHED_GGUF


def _from_run(run: Path) -> GGUFSource:
    from doppel.export.pipeline import ExportOptions, check_run, export_run
    from doppel.models import load_tokenizer

    info = check_run(run)
    target = cached_export(run)
    if not _fresh(target, run):
        print(f"exporting {run} to {target} for llama.cpp (once; again only if the run "
              "changes)", file=sys.stderr)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        export_run(run, target, ExportOptions(force=True, progress=False))
    return GGUFSource(target, load_tokenizer(run / TOKENIZER_DIR), info)


def _fresh(target: Path, run: Path) -> bool:
    """The cached export exists and is newer than every file of the run."""
    if not target.is_file():
        return False
    newest = max(item.stat().st_mtime for item in run.rglob("*") if item.is_file())
    return target.stat().st_mtime >= newest
