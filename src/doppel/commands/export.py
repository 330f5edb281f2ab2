"""`doppel export RUN_DIR -o OUT`: the twin as a merged HF folder, a GGUF file or an Ollama model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from doppel.export.pipeline import DTYPES, FORMATS, QUANTS, ExportOptions


def command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder from `doppel train`.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write: a folder (hf, ollama) or a .gguf file (gguf).")],
    format: Annotated[str, typer.Option(
        "--format", help=f"What to write: {' | '.join(FORMATS)}.")] = "gguf",
    dtype: Annotated[str, typer.Option(
        help=f"Weight type: {' | '.join(DTYPES)} (auto: bf16 for hf, f16 for gguf).")] = "auto",
    quant: Annotated[str, typer.Option(
        help=f"GGUF quantisation: {' | '.join(QUANTS)} (q8_0 halves an f16 file).")] = "none",
    persona: Annotated[str | None, typer.Option(
        "--as", help="Whom the exported model plays (default: the exporting user).")] = None,
    force: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Export a run for llama.cpp, Ollama, LM Studio, vLLM or plain transformers."""
    from doppel.export.pipeline import export_run

    options = ExportOptions(format=format, dtype=dtype, quant=quant, persona=persona, force=force)
    result = export_run(run_dir, out, options)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"wrote {escape(str(result.path))} ({result.bytes / 2**20:.1f} MB) in "
                  f"{result.seconds:.1f} s: the model plays {escape(result.persona)}, "
                  f"talking with {escape(result.partner)}")
    for step in result.next_steps:
        console.print(f"  {escape(step)}")
