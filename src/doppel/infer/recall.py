"""Memory where the twin speaks: which memories a reply may read, found in the dataset's index.

The privacy rule is applied here for every front end (chat, serve, bot) and for training and
eval, through one function (scoped_search over memory.Scope): the partners are the person ids
of everyone in the conversation other than the persona, and a memory is readable only when it
comes from a chat every one of them was part of (a group with Sam and Jo never hears what Sam
told the twin alone). A name in the history is turned into a person id by the dataset's one
resolver (data/people.py); a name that names nobody, or several people, is a member memory
cannot place, so that conversation reads nothing. `--memory-scope all` (the owner's explicit
choice) reads everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from doppel.errors import DoppelError

if TYPE_CHECKING:
    from doppel.data.people import People
    from doppel.infer.options import MemoryOptions
    from doppel.memory import Memory, MemoryIndex, NewUnit
    from doppel.runs import RunInfo

K = 3  # memories per reply: a few stretches of conversation, a quarter of the window at most


class Recall:
    """A dataset's memory index, its people and the scope rule; safe to call from several
    threads."""

    def __init__(self, index: MemoryIndex, people: People, scope: str = "partner",
                 k: int = K) -> None:
        self.index, self.people, self.scope, self.k = index, people, scope, k
        self.lock = threading.Lock()  # one SQLite connection, used by the server's threads

    def partners(self, history: Sequence[tuple[str, str]], persona: str
                 ) -> frozenset[str] | None:
        """Whom the persona is talking to: the person ids of everyone else named anywhere in
        the history; None when a name places nobody (or several): a member of unknown scope."""
        me = self.people.lookup(persona)
        ids = set()
        for name in {speaker for speaker, _ in history if speaker != persona}:
            person = self.people.lookup(name)
            if person is None:
                return None
            ids.add(person)
        return frozenset(ids - {me})

    def unplaced(self, names: Iterable[str], what: str = "name") -> list[str]:
        """A line for each name that places nobody or several people (the API shows them)."""
        return [self.people.problem(name, what) for name in dict.fromkeys(names)
                if self.people.lookup(name) is None]

    def find(self, history: Sequence[tuple[str, str]], persona: str, *,
             partners: Collection[str] | None = None, before: float | None = None,
             token_budget: int | None = None) -> tuple[Memory, ...]:
        """The memories for the persona's next reply to `history`: in the scope of `partners`
        (person ids; the bot passes everyone it has seen in the chat), else of everyone the
        history names; none without a partner, or with one memory cannot place."""
        from doppel.memory import query_from_history

        if self.scope == "all":
            members = None
        else:
            members = frozenset(partners) if partners is not None else \
                self.partners(history, persona)
            if not members:
                return ()
        with self.lock:
            return scoped_search(self.index, query_from_history(history), members, k=self.k,
                                 before=before, token_budget=token_budget)

    def add(self, units: Iterable[NewUnit]) -> None:
        """Remember more (the bot's finished exchanges)."""
        with self.lock:
            self.index.add_units(units)

    def close(self) -> None:
        with self.lock:
            self.index.close()


def scoped_search(index: MemoryIndex, query: str, partners: Collection[str] | None, *,
                  k: int = K, before: float | None = None, exclude: Collection[str] = (),
                  token_budget: int | None = None) -> tuple[Memory, ...]:
    """The privacy rule, for inference, training and eval alike: memories from chats every
    partner (a person id) was part of (None: every chat, the owner's --memory-scope all); no
    partner, no memories."""
    from doppel.memory import Scope

    if not query.strip() or (partners is not None and not partners):
        return ()
    scope = Scope.everything() if partners is None else Scope.of(partners)
    return tuple(index.search(query, scope, before=before, exclude_conversations=exclude, k=k,
                              token_budget=token_budget))


def memories_json(memories: Sequence[Memory]) -> list[dict]:
    """What a reply read, as the API's extension field and the web page show it."""
    return [{"date": time.strftime("%Y-%m-%d", time.gmtime(m.start)), "chat": m.chat_name,
             "participants": list(m.who), "lines": [list(line) for line in m.lines]}
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
    from doppel.data.dataset import load_dataset
    from doppel.data.people import People

    people = People.of_manifest(load_dataset(dataset).manifest)
    index = open_index(dataset, build_if_missing=True)
    where = "every chat" if options.memory_scope == "all" else "only chats the partner was in"
    return Recall(index, people, options.memory_scope), f"memory on: {dataset} ({where})"
