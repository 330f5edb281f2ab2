"""The model chat, serve, bot and the demo talk to, from their LoadOptions.

It sits above infer/ and export/ because `--engine llama.cpp RUN_DIR` needs both: export/ turns
the run into a GGUF (once, next to it), then infer/ runs it. infer/ never imports export/
(export/ checks its output with infer/'s engine; tests/test_layout.py keeps the direction).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from doppel.infer.options import LoadOptions, MemoryOptions


def load_engine(options: LoadOptions, memory: MemoryOptions | None = None,
                say: Callable[[str], None] | None = None):
    """Load without progress bars or library chatter (errors still surface as DoppelError);
    with `memory`, attach the dataset's memories (`say` gets the line saying on or off once
    the model is loaded), opened first so a bad --data fails before any model loads."""
    recall = None
    if memory is not None:
        from doppel.infer.recall import open_recall
        from doppel.runs import RunInfo, is_run_dir, read_run_info

        run = Path(options.run)
        info = read_run_info(run) if is_run_dir(run) else RunInfo(base_model=options.run)
        recall, note = open_recall(memory, info)
    engine = _load(options)
    engine.recall = recall
    if memory is not None and say:  # after the load: a model that fails to load is one line
        say(note)
    return engine


def _load(options: LoadOptions):
    from transformers.utils import logging

    from doppel.hardware import torch_dtype

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    if options.engine == "llama.cpp":
        return load_llama(options.run, max_length=options.max_length, threads=options.threads)
    from doppel.infer.engine import Engine

    return Engine.load(options.run, merge=options.merge, dtype=torch_dtype(options.precision),
                       max_length=options.max_length)


def load_llama(spec: str, max_length: int | None = None, threads: int | None = None):
    """A .gguf, an export folder or a run folder (exported first) in llama.cpp."""
    from doppel.export.gguf_source import resolve
    from doppel.infer.llama_engine import LlamaEngine, llama_cpp_module

    llama_cpp_module()  # missing: say so before exporting a run for nothing
    source = resolve(spec)
    return LlamaEngine.load(source.gguf, source.tokenizer, source.info, max_length=max_length,
                            threads=threads)
