"""Choosing what `doppel memory forget` removes: stretches (memory units) of the index that hold
every word of a query, that belong to one chat, or that began before a date (any combination:
all must hold). Applying it records them (data/forgotten.py) and rebuilds the index without them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import orjson

from doppel.data.forgotten import Stretch, append_forgotten, records_of
from doppel.data.people import People
from doppel.errors import DoppelError
from doppel.memory.index import MEMORY_FILE, build_index, open_index
from doppel.memory.search import fold_words
from doppel.memory.units import unit_text


@contextlib.contextmanager
def _index(dataset: Path) -> Iterator[sqlite3.Connection]:
    """The dataset's memory.sqlite, read-only; none, or a damaged one: one DoppelError line."""
    path = Path(dataset) / MEMORY_FILE
    if not path.is_file():
        raise DoppelError(f"{dataset} has no memory index; build it with "
                          f"`doppel memory build {dataset}`")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("SELECT key, conversation_id, chat_id, chat_name, start, end, lines "
                   "FROM units LIMIT 1").fetchall()
    except sqlite3.DatabaseError as error:
        db.close()
        raise DoppelError(f"{path} is not a readable doppel memory index ({error}); rebuild it "
                          f"with `doppel memory build {dataset}`") from None
    try:
        yield db
    finally:
        db.close()


def resolve_chat(db: sqlite3.Connection, typed: str) -> str:
    """The one chat id `typed` names (an id, or a title: People's rule, so two chats with one
    title are an error that lists both with their ids)."""
    titles = dict(db.execute("SELECT DISTINCT chat_id, chat_name FROM units"))
    return People(titles, noun="chats").resolve(typed, "--chat")


def choose(dataset: Path, query: str | None, chat: str | None,
           before: float | None) -> list[Stretch]:
    """The stretches that hold every word of `query` (folded as the index folds them: case and
    accents ignored, whole words), in `chat`, begun before `before`, in time order."""
    where, params = [], []
    with _index(dataset) as db:
        if chat is not None:
            where.append("chat_id = ?")
            params.append(resolve_chat(db, chat))
        if before is not None:
            where.append("start < ?")
            params.append(before)
        if query is not None:
            words = list(dict.fromkeys(fold_words(query)))
            if not words:
                raise DoppelError(f"{query!r} has no words to look for")
            where.append("id IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
            params.append(" AND ".join('"' + w.replace('"', '""') + '"' for w in words))
        rows = db.execute(
            "SELECT key, conversation_id, chat_id, chat_name, start, end, lines FROM units "
            f"WHERE {' AND '.join(where)} ORDER BY start, id", params).fetchall()
    return [Stretch(key, conversation, chat_id, name, start, end,
                    unit_text(SimpleNamespace(lines=orjson.loads(lines))))
            for key, conversation, chat_id, name, start, end, lines in rows]


def forget(dataset: Path, stretches: list[Stretch], how: str, progress: bool) -> Path:
    """Record the stretches, then rebuild the index without them with its own embedder (which
    must load, and the index be of this version, before anything is written)."""
    with open_index(dataset, build_if_missing=False) as memory:
        embedder = memory.meta.get("embedder_source")
    path = append_forgotten(dataset, records_of(stretches, how))
    build_index(dataset, embedder, progress)
    return path
