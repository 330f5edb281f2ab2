"""The option sets of `doppel chat` and `doppel serve`, and loading the engine they share."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, model_validator

from doppel.errors import DoppelError
from doppel.hardware import PRECISION_HELP, Precision, precision_word
from doppel.infer.sampling import SamplingParams
from doppel.options import Options, option


class LoadOptions(Options):
    """Which model to load and how: a run folder or a base model, for chat, serve (and bot)."""

    run: str = option(help="A run folder from `doppel train`, or a base model (e.g. smollm2-135m) "
                      "to compare with; with --engine llama.cpp, a run folder or a .gguf (or "
                      "folder) from `doppel export`.", argument=True, metavar="RUN_DIR")
    engine: Literal["torch", "llama.cpp"] = option(
        "torch", "What generates: torch (any model, batches concurrent requests) or llama.cpp "
        "(a GGUF export: a faster single stream on a CPU, one request at a time; needs "
        "`pip install 'doppel[llama]'`; a run folder is exported once, next to it).")
    threads: int | None = option(None, "CPU threads for --engine llama.cpp (default: every core "
                                 "but one; its threads wait for each other, so one busy core "
                                 "slows them all).", ge=1)
    merge: bool = option(True, "Merge a LoRA adapter into the base weights at load (faster "
                         "generation).")
    max_length: int | None = option(None, "Context window in tokens (default: the run's "
                                    "max_length); older messages drop off.", ge=32)
    # --dtype float32|bfloat16 was this option's name before; it still works, hidden
    precision: Annotated[Precision, BeforeValidator(precision_word)] = option(
        "auto", f"Weights in {PRECISION_HELP}.", alias="--dtype")


class MemorySwitch(Options):
    """--memory alone, declared once: chat, serve and bot (MemoryOptions) and eval take it."""

    memory: Literal["on", "off"] | None = option(
        None, "Read memories from your chats before replying: on (builds the dataset's index if "
        "missing) or off (default: on when the dataset has an index).", metavar="on|off")


class MemoryOptions(MemorySwitch):
    """Memory where the twin speaks (chat, serve, bot): stretches of your earlier chats, found
    in the dataset's index (doppel.memory), put before the conversation (infer/recall.py)."""

    memory_scope: Literal["partner", "all"] = option(
        "partner", "Whose chats memories come from: partner (only chats the person talking was "
        "in) or all (every chat; what one friend told you can reach another).")
    data: Path | None = option(None, "The dataset folder to remember from (default: the one "
                               "the run was trained on, named in its run.json).",
                               metavar="DATASET")


class ChatOptions(Options):
    """`doppel chat`: who plays whom, an optional script, sampling, the model."""

    persona: str | None = option(None, "Whom the model plays (default: the exporting user).",
                                 flags=("--as",))
    me: str | None = option(None, "Whom you write as (default: the persona's most frequent "
                            "partner).")
    script: Path | None = option(None, "Send each line of this file as a message (lines "
                                 "starting with / are commands), print the transcript and exit.")
    sampling: SamplingParams = SamplingParams()
    recall: MemoryOptions = MemoryOptions()
    load: LoadOptions


class ServeOptions(Options):
    """`doppel serve`: where to listen, the queue, sampling defaults, the model."""

    host: str = option("127.0.0.1", "Address to listen on; anything but loopback needs "
                       "--api-key.")
    port: int = option(8000, "Port to listen on.", ge=0, le=65535)
    api_key: str | None = option(None, "Require `Authorization: Bearer KEY` on /v1.",
                                 envvar="DOPPEL_API_KEY", repr=False)
    queue_size: int = option(8, "Requests that may wait while a full batch generates; more get "
                             "503.", ge=0)
    batch_size: int = option(8, "Requests generated together (continuous batching).", ge=1)
    timeout: float = option(120.0, "Seconds a request may take, waiting included.", ge=1)
    sampling: SamplingParams = SamplingParams()
    recall: MemoryOptions = MemoryOptions()
    load: LoadOptions

    @model_validator(mode="after")
    def _private_by_default(self) -> ServeOptions:
        check_exposure(self.host, self.api_key)
        return self


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without a key: chat logs are private."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False  # a host name could resolve anywhere
    if not loopback and not api_key:
        raise DoppelError(f"--host {host} is reachable from other machines; pass --api-key KEY "
                          "(or set DOPPEL_API_KEY), or keep the default --host 127.0.0.1")


def load_engine(options: LoadOptions, memory: MemoryOptions | None = None,
                say: Callable[[str], None] | None = None):
    """Load without progress bars or library chatter (errors still surface as DoppelError);
    with `memory`, attach the dataset's memories (`say` gets the line saying on or off), opened
    first so a bad --data fails before any model loads."""
    recall = None
    if memory is not None:
        from doppel.infer.recall import open_recall
        from doppel.runs import RunInfo, is_run_dir, read_run_info

        run = Path(options.run)
        info = read_run_info(run) if is_run_dir(run) else RunInfo(base_model=options.run)
        recall, note = open_recall(memory, info)
        if say:
            say(note)
    engine = _load(options)
    engine.recall = recall
    return engine


def _load(options: LoadOptions):
    from transformers.utils import logging

    from doppel.hardware import torch_dtype

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    if options.engine == "llama.cpp":
        from doppel.infer.llama_engine import LlamaEngine

        return LlamaEngine.load(options.run, max_length=options.max_length,
                                threads=options.threads)
    from doppel.infer.engine import Engine

    return Engine.load(options.run, merge=options.merge, dtype=torch_dtype(options.precision),
                       max_length=options.max_length)
