"""`doppel export RUN_DIR -o OUT`: the twin as a merged HF folder, a GGUF file or an Ollama model.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from doppel.export.pipeline import ExportCommand, ExportOptions
from doppel.options import command_from_options


@command_from_options
def command(target: ExportCommand, options: ExportOptions) -> None:
    """Export a run for llama.cpp, Ollama, LM Studio, vLLM or plain transformers."""
    from doppel.export.pipeline import export_run

    result = export_run(target.run_dir, target.output, options)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"wrote {escape(str(result.path))} ({result.bytes / 2**20:.1f} MB) in "
                  f"{result.seconds:.1f} s: the model plays {escape(result.persona)}, "
                  f"talking with {escape(result.partner)}")
    for step in result.next_steps:
        console.print(f"  {escape(step)}")
