"""The option sets of `doppel chat` and `doppel serve` (doppel/engines.py loads the model)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator

from doppel.errors import DoppelError
from doppel.hardware import PrecisionWord
from doppel.infer.hosts import is_loopback
from doppel.infer.sampling import SamplingParams
from doppel.options import Options, option, precision_option


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
    precision: PrecisionWord = precision_option("Weights", alias="--dtype")


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
                            "partner): a name, a first name only one person has, or an id; "
                            "with memory on, one that names nobody or several is an error.")
    script: Path | None = option(None, "Send each line of this file as a message (lines "
                                 "starting with / are commands), print the transcript and exit.")
    sampling: SamplingParams = SamplingParams()
    recall: MemoryOptions = MemoryOptions()
    load: LoadOptions


class ListenOptions(Options):
    """Where a server listens and its key: one rule for `doppel serve` and `doppel blindtest`."""

    host: str = option("127.0.0.1", "Address to listen on; anything but loopback needs "
                       "--api-key.")
    port: int = option(8000, "Port to listen on.", ge=0, le=65535)
    api_key: str | None = option(None, "Require `Authorization: Bearer KEY` on the owner's API "
                                 "(serve: /v1; blindtest: /api/results).",
                                 envvar="DOPPEL_API_KEY", repr=False)

    @model_validator(mode="after")
    def _private_by_default(self) -> ListenOptions:
        check_exposure(self.host, self.api_key)
        return self

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"


class ApiOptions(ListenOptions):
    """What the server does with requests: where it listens, who may call, the queue, the
    sampling defaults (server.create_app takes these; `doppel serve` adds the model)."""

    queue_size: int = option(8, "Requests that may wait while a full batch generates; more get "
                             "503.", ge=0)
    batch_size: int = option(8, "Requests generated together (continuous batching).", ge=1)
    timeout: float = option(120.0, "Seconds a request may take, waiting included.", gt=0)
    sampling: SamplingParams = SamplingParams()


class ServeOptions(ApiOptions):
    """`doppel serve`: the server's options, memory and the model."""

    recall: MemoryOptions = MemoryOptions()
    load: LoadOptions


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without a key: chat logs are private."""
    if not is_loopback(host) and not api_key:  # a host name could resolve anywhere
        raise DoppelError(f"--host {host} is reachable from other machines; pass --api-key KEY "
                          "(or set DOPPEL_API_KEY), or keep the default --host 127.0.0.1")

