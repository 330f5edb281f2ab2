"""The memory options of `doppel prepare` and `doppel memory`, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from doppel.options import Options, option


class EmbedderOptions(Options):
    """Which embedder makes the memory index's vectors (prepare and `memory build`)."""

    embedder: Path | None = option(
        None, "Memory index embedder: a local model2vec or sentence-transformers folder. "
        "Default: the bundled use-m3-static (multilingual; nothing is downloaded).",
        metavar="PATH")


class MemorySearchOptions(Options):
    """`doppel memory search`: whose conversations, how many hits."""

    partner: str | None = option(
        None, "Only conversations this person was part of (their chat with you and the groups "
        "they were in): what the twin may recall when talking to them. A person id, their name, "
        "or a first name only they have. Default: everything.",
        flags=("--with",), metavar="NAME")
    k: int = option(5, "How many hits to print.", flags=("--top", "-k"), ge=1, le=100)


class MemoryCommand(Options):
    """`doppel memory`'s action, dataset folder and query."""

    action: Literal["build", "search"] = option(
        help="build: (re)build DATASET/memory.sqlite; search: print the best hits for QUERY.",
        argument=True, metavar="ACTION")
    dataset: Path = option(help="A dataset folder from `doppel prepare`.", argument=True,
                           metavar="DATASET")
    query: str | None = option(None, "What to look for (search).", argument=True,
                               metavar="QUERY")
    quiet: bool = option(False, "No progress bar.", flags=("--quiet", "-q"))
