"""Memory where the twin speaks: which memories a reply may read, found in the dataset's index.

The privacy rule is applied here for every front end (chat, serve, bot): the partners are the
people in the conversation other than the persona, and a memory is readable only when it comes
from a chat every one of them was part of (a group with Sam and Jo never hears what Sam told the
twin alone). `--memory-scope all` (the owner's explicit choice) reads everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from doppel.errors import DoppelError

if TYPE_CHECKING:
    from doppel.infer.options import MemoryOptions
    from doppel.memory import Memory, MemoryIndex, NewUnit
    from doppel.runs import RunInfo

K = 3  # memories per reply: a few stretches of conversation, a quarter of the window at most
WIDEN = 4  # candidates asked for per memory kept, when a group's scope filters them further


class Recall:
    """A dataset's memory index and the scope rule; safe to call from several threads."""

    def __init__(self, index: MemoryIndex, scope: str = "partner", k: int = K) -> None:
        self.index, self.scope, self.k = index, scope, k
        self.lock = threading.Lock()  # one SQLite connection, used by the server's threads

    def partners(self, history: Sequence[tuple[str, str]], persona: str) -> frozenset[str]:
        """Whom the persona is talking to: everyone else who spoke in the history."""
        return frozenset(speaker for speaker, _ in history if speaker != persona)

    def find(self, history: Sequence[tuple[str, str]], persona: str, *,
             before: float | None = None,
             token_budget: int | None = None) -> tuple[Memory, ...]:
        """The memories for the persona's next reply to `history` (none without a partner)."""
        from doppel.memory import query_from_history

        partners = None if self.scope == "all" else self.partners(history, persona)
        with self.lock:
            return scoped_search(self.index, query_from_history(history), partners, k=self.k,
                                 before=before, token_budget=token_budget)

    def add(self, units: Iterable[NewUnit]) -> None:
        """Remember more (the bot's finished exchanges)."""
        with self.lock:
            self.index.add_units(units)

    def close(self) -> None:
        with self.lock:
            self.index.close()


def scoped_search(index: MemoryIndex, query: str, partners: frozenset[str] | None, *, k: int = K,
                  before: float | None = None, exclude: Collection[str] = (),
                  token_budget: int | None = None) -> tuple[Memory, ...]:
    """The privacy rule, for inference and training alike: memories from chats every partner
    was part of (None: every chat, the owner's --memory-scope all); no partner, no memories."""
    from doppel.memory import Scope

    if not query.strip() or (partners is not None and not partners):
        return ()
    scope = Scope.everything() if partners is None else Scope(partners)
    wanted = k if partners is None or len(partners) == 1 else k * WIDEN
    found = index.search(query, scope, before=before, exclude_conversations=exclude, k=wanted,
                         token_budget=token_budget)
    if partners is not None:  # a group: Scope admits a chat any partner was in; keep all-in
        found = [m for m in found if partners <= set(m.participants)]
    return tuple(found[:k])


def memories_json(memories: Sequence[Memory]) -> list[dict]:
    """What a reply read, as the API's extension field and the web page show it."""
    return [{"date": time.strftime("%Y-%m-%d", time.gmtime(m.start)), "chat": m.chat_name,
             "participants": list(m.participants), "lines": [list(line) for line in m.lines]}
            for m in memories]


def dataset_of(options: MemoryOptions, info: RunInfo) -> Path | None:
    """The dataset whose memories a model reads: --data, else the one its run was trained on."""
    if options.data is not None:
        return options.data.expanduser()
    path = (info.dataset or {}).get("path")
    return Path(path) if path else None


def open_recall(options: MemoryOptions, info: RunInfo) -> tuple[Recall | None, str]:
    """The Recall for a loaded model, and a line to show the user (why memory is off, or on).

    `--memory on` insists (no dataset: one-line error; no index yet: built now, saying so);
    the default reads memories when the dataset already has an index and hints otherwise; a
    --data folder that does not exist is an error either way."""
    from doppel.memory import MEMORY_FILE, open_index

    if options.memory == "off":
        return None, "memory off"
    insist = options.memory == "on"
    dataset = dataset_of(options, info)
    if dataset is None:
        if insist:
            raise DoppelError("--memory on needs the dataset to remember from: pass --data "
                              "DATASET (this model's run.json names none)")
        return None, "memory off (this model names no dataset; pass --data DATASET)"
    if not dataset.is_dir():
        if insist or options.data is not None:
            raise DoppelError(f"dataset {dataset} does not exist; pass --data DATASET (a folder "
                              "from `doppel prepare`) or --memory off")
        return None, f"memory off (the run's dataset {dataset} is gone; pass --data DATASET)"
    if not (dataset / MEMORY_FILE).is_file() and not insist:
        return None, (f"memory off: {dataset} has no memory index yet; build it with "
                      f"`doppel memory build {dataset}` or pass --memory on")
    index = open_index(dataset, build_if_missing=True)
    where = "every chat" if options.memory_scope == "all" else "only chats the partner was in"
    return Recall(index, options.memory_scope), f"memory on: {dataset} ({where})"
