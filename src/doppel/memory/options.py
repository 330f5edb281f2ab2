"""The memory options of `doppel prepare` and `doppel memory`, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import field_validator

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


class MemoryForgetOptions(Options):
    """`doppel memory forget`: which stretches go (all the given conditions must hold)."""

    chat: str | None = option(
        None, "forget: the stretches of this chat (its id, or its title when one chat has it).",
        metavar="NAME")
    before: str | None = option(
        None, "forget: the stretches that began before this day (YYYY-MM-DD, UTC).",
        metavar="DATE")
    yes: bool = option(False, "forget: do it (without it, forget only shows what would go).",
                       flags=("--yes",))
    show_list: bool = option(
        False, "forget: show what was forgotten (dates and chats, never the text).",
        flags=("--list",))

    @field_validator("before")
    @classmethod
    def _day(cls, value: str | None) -> str | None:
        if value is not None:
            from doppel.data.forgotten import parse_day

            parse_day(value)  # checked now: one line naming the flag
        return value


class MemoryCommand(Options):
    """`doppel memory`'s action, dataset folder and query."""

    action: Literal["build", "search", "forget"] = option(
        help="build: (re)build DATASET/memory.sqlite; search: print the best hits for QUERY; "
        "forget: remove the stretches that hold every word of QUERY (case and accents ignored; "
        "and/or --chat, --before) from memory and training, for good.",
        argument=True, metavar="ACTION")
    dataset: Path = option(help="A dataset folder from `doppel prepare`.", argument=True,
                           metavar="DATASET")
    query: str | None = option(None, "What to look for (search), or to forget (forget).",
                               argument=True, metavar="QUERY")
    quiet: bool = option(False, "No progress bar.", flags=("--quiet", "-q"))
