"""The blind test and its answers: one owner-only SQLite file next to the run folder.

It holds what every judge sees (items with their candidates in the order shown, generated once),
the judges and their link tokens, and one row per answer. An answer is kept the first time a
judge gives it: answering again (a double tap, a resent request) changes nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError

# 2: a judge's person id beside their name (version 1 is migrated: its judges keep their names)
SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judges (
    name TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, created REAL NOT NULL, person TEXT);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, conversation TEXT NOT NULL, turn INTEGER NOT NULL,
    history TEXT NOT NULL, candidates TEXT NOT NULL, sources TEXT NOT NULL,
    UNIQUE (conversation, turn));
CREATE TABLE IF NOT EXISTS judge_items (
    judge TEXT NOT NULL, item INTEGER NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (judge, item));
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT, judge TEXT NOT NULL, item INTEGER NOT NULL,
    pick INTEGER NOT NULL, ratings TEXT NOT NULL, time REAL NOT NULL, via TEXT NOT NULL,
    UNIQUE (judge, item));
"""


@dataclass(frozen=True)
class Item:
    """One screen of the test: the chat before a real turn, and the candidate replies in the
    order every judge sees them; `sources[i]` says whose candidate i is ("real", "twin", ...)."""

    id: int
    conversation: str
    turn: int
    history: list[tuple[str, str]]
    candidates: list[list[str]]
    sources: list[str]

    def public(self) -> dict[str, Any]:
        """What a judge may see: never the sources."""
        return {"id": self.id, "history": [list(m) for m in self.history],
                "candidates": self.candidates}


@dataclass(frozen=True)
class Answer:
    judge: str
    item: int
    pick: int
    ratings: list[int | None]
    time: float
    via: str


def default_store_path(run_dir: str | Path) -> Path:
    """Next to the run folder, never inside it (as the bot's state): answers must not ship with
    the run, and a retrain must not lose them."""
    run = Path(os.path.abspath(Path(run_dir).expanduser()))
    return run.parent / f"{run.name}.blindtest.sqlite"


class BlindStore:
    """The test's file; every write is committed at once."""

    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise DoppelError(f"no blind test at {self.path}; prepare one with `doppel blindtest "
                              "RUN --data DATASET --judge NAME`")
        self.db = _connect(self.path)
        self._withheld: tuple[tuple[int, int] | None, frozenset[str]] = (None, frozenset())

    # --- the test's identity -------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, Any]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in values.items()])

    # --- judges --------------------------------------------------------------------------
    def judges(self) -> dict[str, str]:
        """name -> token, in the order they were added."""
        rows = self.db.execute("SELECT name, token FROM judges ORDER BY created, rowid")
        return dict(rows.fetchall())

    def judge_people(self) -> dict[str, str]:
        """person id -> judge name, for judges added with one (a store from before ids has
        none: those judges are found by name)."""
        return dict(self.db.execute(
            "SELECT person, name FROM judges WHERE person IS NOT NULL").fetchall())

    def judge_of(self, person: str | None, name: str) -> str | None:
        """The judge name a person answers as: by their id; by their name only for a judge
        added before ids were kept, or when `person` is None (the test's dataset is gone, and
        the owner's --friend ID=NAME is all there is to go by)."""
        row = self.db.execute("SELECT name FROM judges WHERE person = ? OR ((person IS NULL OR "
                              "? IS NULL) AND name = ?) ORDER BY person IS NULL LIMIT 1",
                              (person, person, name)).fetchone()
        return row[0] if row else None

    def add_judge(self, name: str, token: str, items: list[int], person: str | None = None
                  ) -> None:
        with self.db:
            self.db.execute("INSERT INTO judges (name, token, created, person) VALUES (?, ?, ?, ?)",
                            (name, token, time.time(), person))
            self.db.executemany("INSERT INTO judge_items (judge, item, position) VALUES (?, ?, ?)",
                                [(name, item, n) for n, item in enumerate(items)])

    # --- items ---------------------------------------------------------------------------
    def item_id(self, conversation: str, turn: int) -> int | None:
        row = self.db.execute("SELECT id FROM items WHERE conversation = ? AND turn = ?",
                              (conversation, turn)).fetchone()
        return row[0] if row else None

    def add_item(self, conversation: str, turn: int, history: list[tuple[str, str]],
                 candidates: list[list[str]], sources: list[str]) -> int:
        with self.db:
            row = self.db.execute(
                "INSERT INTO items (conversation, turn, history, candidates, sources) "
                "VALUES (?, ?, ?, ?, ?)", (conversation, turn, json.dumps(history),
                                           json.dumps(candidates), json.dumps(sources)))
        return row.lastrowid

    def items(self, judge: str | None = None) -> list[Item]:
        """Every item, or a judge's in their order."""
        if judge is None:
            rows = self.db.execute("SELECT id, conversation, turn, history, candidates, sources "
                                   "FROM items ORDER BY id")
        else:
            rows = self.db.execute(
                "SELECT i.id, i.conversation, i.turn, i.history, i.candidates, i.sources FROM "
                "judge_items j JOIN items i ON i.id = j.item WHERE j.judge = ? "
                "ORDER BY j.position", (judge,))
        items = [Item(id_, conversation, turn, [tuple(m) for m in json.loads(history)],
                      json.loads(candidates), json.loads(sources))
                 for id_, conversation, turn, history, candidates, sources in rows]
        withheld = self._forgotten()
        if not withheld:
            return items
        return [item for item in items
                if not any(text in withheld for _, text in item.history)
                and not any(text in withheld for said in item.candidates for text in said)]

    def _forgotten(self) -> frozenset[str]:
        """Texts `doppel memory forget` removed from the test's dataset after its screens were
        made: a screen showing one is withheld (from judges, the bot's quiz and the results),
        re-read whenever the forget record changes."""
        from doppel.data.dataset import load_dataset
        from doppel.data.forgotten import FORGOTTEN

        folder = self.meta().get("dataset")
        if not folder:
            return frozenset()
        try:
            found = (Path(folder) / FORGOTTEN).stat()
            stamp: tuple[int, int] | None = (found.st_mtime_ns, found.st_size)
        except OSError:
            stamp = None
        if stamp != self._withheld[0]:
            self._withheld = (stamp, frozenset() if stamp is None
                              else load_dataset(Path(folder)).forgotten_texts())
        return self._withheld[1]

    # --- answers -------------------------------------------------------------------------
    def answer(self, judge: str, item: int, pick: int, ratings: list[int | None],
               via: str) -> bool:
        """Record a judge's answer; False when they had answered this item already."""
        with self.db:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO answers (judge, item, pick, ratings, time, via) "
                "VALUES (?, ?, ?, ?, ?, ?)", (judge, item, pick, json.dumps(ratings),
                                              time.time(), via))
        return cursor.rowcount == 1

    def answers(self, judge: str | None = None) -> list[Answer]:
        query = "SELECT judge, item, pick, ratings, time, via FROM answers"
        rows = (self.db.execute(query + " ORDER BY id") if judge is None else
                self.db.execute(query + " WHERE judge = ? ORDER BY id", (judge,)))
        return [Answer(j, i, p, json.loads(r), t, v) for j, i, p, r, t, v in rows]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> BlindStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating) the file readable by its owner only: it quotes private chats."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        db = sqlite3.connect(path, check_same_thread=False)
        db.executescript(SCHEMA)  # fails here, not later, on a file that is not SQLite
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version is not None and json.loads(version[0]) == 1:
            _migrate_v1(db)
            version = (json.dumps(SCHEMA_VERSION),)
        if version is None:
            with db:
                db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                           (json.dumps(SCHEMA_VERSION),))
        elif json.loads(version[0]) != SCHEMA_VERSION:
            raise DoppelError(f"{path} holds a blind test of another doppel version (schema "
                              f"{version[0]}); choose another --store")
    except (OSError, sqlite3.DatabaseError) as error:
        raise DoppelError(f"cannot open the blind test file {path}: {error}; choose another "
                          "with --store") from None
    return db


def _migrate_v1(db: sqlite3.Connection) -> None:
    """Version 1 knew judges by name only: they get an empty person id (found by name, as
    before) and the file says version 2."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(judges)")]
    with db:
        if "person" not in columns:
            db.execute("ALTER TABLE judges ADD COLUMN person TEXT")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                   (json.dumps(SCHEMA_VERSION),))
