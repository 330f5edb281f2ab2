"""`doppel export RUN_DIR -o OUT`: the twin as a merged HF folder, a GGUF file or an Ollama model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from doppel.export.pipeline import ExportOptions
from doppel.options import command_from_options


@command_from_options
def command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder from `doppel train`.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write: a folder (hf, ollama) or a .gguf file (gguf).")],
    options: ExportOptions,
) -> None:
    """Export a run for llama.cpp, Ollama, LM Studio, vLLM or plain transformers."""
    from doppel.export.pipeline import export_run

    result = export_run(run_dir, out, options)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"wrote {escape(str(result.path))} ({result.bytes / 2**20:.1f} MB) in "
                  f"{result.seconds:.1f} s: the model plays {escape(result.persona)}, "
                  f"talking with {escape(result.partner)}")
    for step in result.next_steps:
        console.print(f"  {escape(step)}")
