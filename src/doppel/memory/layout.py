"""The tables of memory.sqlite and the one writer that fills them.

A unit's text (its lines) is stored once however many units hold it, with its int8 vector
beside it (vectors.py): identical stretches (greetings, forwarded chains, a chat exported
twice) are embedded and stored once. Who was in a chat is stored once per chat. A view named
`units` joins them back, so what reads a unit reads it as the one table it used to be; the
FTS5 table is contentless (the text is never stored twice) and keyed by unit id.
"""

from __future__ import annotations

import hashlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence

import numpy as np
import orjson

from doppel.memory import vectors
from doppel.memory.records import NewUnit
from doppel.memory.search import TOKENIZE
from doppel.memory.units import unit_text

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE texts (id INTEGER PRIMARY KEY, lines TEXT NOT NULL, vector BLOB NOT NULL);
CREATE TABLE chats (id INTEGER PRIMARY KEY, chat_id TEXT NOT NULL, chat_name TEXT NOT NULL,
  participants TEXT NOT NULL, names TEXT NOT NULL);
CREATE TABLE unit_rows (id INTEGER PRIMARY KEY, text INTEGER NOT NULL, chat INTEGER NOT NULL,
  conversation_id TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL);
CREATE VIEW units AS SELECT u.id AS id, u.conversation_id AS conversation_id,
  c.chat_id AS chat_id, c.chat_name AS chat_name, c.participants AS participants,
  c.names AS names, u.start AS start, u.end AS end, t.lines AS lines, u.text AS text,
  t.vector AS vector
  FROM unit_rows u JOIN chats c ON c.id = u.chat JOIN texts t ON t.id = u.text;
CREATE VIRTUAL TABLE fts USING fts5(body, content='', tokenize='{TOKENIZE}');
CREATE VIRTUAL TABLE vocab USING fts5vocab(fts, row);
"""

Embed = Callable[[list[str]], np.ndarray]  # texts -> unit-length float32 rows


def lines_json(unit: NewUnit) -> bytes:
    """The `lines` column as stored (and as schema 1 and 2 stored it)."""
    return orjson.dumps(unit.lines)


def text_key(stored_lines: bytes) -> bytes:
    """Same lines, same key: the unit's text and so its vector (whatever chat it is in)."""
    return hashlib.blake2b(stored_lines, digest_size=16).digest()


class Writer:
    """Appends units to an index: each distinct text once (with its vector), each chat's
    members once, every unit and its FTS5 row. `lend(keys)` gives the stored vectors another
    source already holds (an older index), by key; the rest are embedded.

    With `background`, the SQL runs in a thread of its own (SQLite releases the GIL while it
    inserts and tokenizes for FTS5), overlapping the next batch's cutting and embedding; use
    it as a context manager so the writes are waited for (and their error raised)."""

    def __init__(self, db: sqlite3.Connection, embed: Embed,
                 lend: Callable[[list[bytes]], dict[bytes, bytes]] | None = None, *,
                 background: bool = False) -> None:
        self.db = db
        self.embed = embed
        self.lend = lend
        self.texts: dict[bytes, int] = {}
        self.chats: dict[tuple, int] = {}  # (chat id, name, person ids, labels) -> row
        self.next_text = _next_id(db, "texts")
        self.next_chat = _next_id(db, "chats")
        self.next_unit = _next_id(db, "unit_rows")
        self.embedded = self.reused = 0
        self._jobs: queue.Queue | None = queue.Queue(maxsize=4) if background else None
        self._error: BaseException | None = None
        if self._jobs is not None:
            self._thread = threading.Thread(target=self._drain, name="memory-index-writer",
                                            daemon=True)
            self._thread.start()

    def add(self, units: Sequence[NewUnit], stored: Sequence[bytes | None] | None = None
            ) -> list[int]:
        """Write `units` (with their stored vectors where the caller has them); their ids."""
        stored_lines = [lines_json(unit) for unit in units]
        keys = [text_key(lines) for lines in stored_lines]
        bodies = [unit_text(unit) for unit in units]
        new: dict[bytes, int] = {}  # key -> first unit of this batch with it
        for i, key in enumerate(keys):
            if key not in self.texts and key not in new:
                new[key] = i
        blobs = self._vectors(bodies, stored, new)
        rows = []
        for key, i in new.items():
            self.texts[key] = self.next_text
            rows.append((self.next_text, stored_lines[i].decode(), blobs[key]))
            self.next_text += 1
        self._run("INSERT INTO texts (id, lines, vector) VALUES (?, ?, ?)", rows)
        ids = list(range(self.next_unit, self.next_unit + len(units)))
        self.next_unit += len(units)
        chats: list[tuple] = []
        unit_rows = [(unit_id, self.texts[key], self._chat(unit, chats), unit.conversation_id,
                      unit.start, unit.end) for unit_id, key, unit in zip(ids, keys, units,
                                                                          strict=True)]
        self._run("INSERT INTO chats (id, chat_id, chat_name, participants, names) "
                  "VALUES (?, ?, ?, ?, ?)", chats)
        self._run("INSERT INTO unit_rows (id, text, chat, conversation_id, start, end) "
                  "VALUES (?, ?, ?, ?, ?, ?)", unit_rows)
        self._run("INSERT INTO fts (rowid, body) VALUES (?, ?)", list(zip(ids, bodies,
                                                                          strict=True)))
        return ids

    def _vectors(self, bodies: list[str], stored: Sequence[bytes | None] | None,
                 new: dict[bytes, int]) -> dict[bytes, bytes]:
        """The stored vector of each new text: given, lent, or embedded (in that order)."""
        out: dict[bytes, bytes] = {}
        if stored is not None:
            out.update((key, stored[i]) for key, i in new.items() if stored[i] is not None)
        if self.lend is not None:
            lent = self.lend([key for key in new if key not in out])
            self.reused += len(lent)
            out.update(lent)
        missing = [key for key in new if key not in out]
        if missing:
            fresh = vectors.encode(self.embed([bodies[new[key]] for key in missing]))
            out.update(zip(missing, fresh, strict=True))
            self.embedded += len(missing)
        return out

    def _chat(self, unit: NewUnit, new_rows: list[tuple]) -> int:
        members = (unit.chat_id, unit.chat_name, tuple(unit.participants), tuple(unit.names))
        code = self.chats.get(members)
        if code is None:
            code = self.chats[members] = self.next_chat
            self.next_chat += 1
            new_rows.append((code, unit.chat_id, unit.chat_name,
                             orjson.dumps(list(unit.participants)).decode(),
                             orjson.dumps(list(unit.names)).decode()))
        return code

    def _run(self, sql: str, rows: list[tuple]) -> None:
        if not rows:
            return
        if self._jobs is None:
            self.db.executemany(sql, rows)
            return
        if self._error is not None:
            raise self._error
        self._jobs.put((sql, rows))

    def _drain(self) -> None:
        assert self._jobs is not None
        while (job := self._jobs.get()) is not None:
            if self._error is None:
                try:
                    self.db.executemany(*job)
                except BaseException as error:  # raised in the caller's thread by close()
                    self._error = error

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        """Wait for the background writes; their error is raised unless one is on its way."""
        if self._jobs is not None:
            self._jobs.put(None)
            self._thread.join()
            self._jobs = None
            if self._error is not None and kind is None:
                raise self._error


def _next_id(db: sqlite3.Connection, table: str) -> int:
    return (db.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0) + 1


class Lender:
    """The vectors an older index holds, by text key, as this schema stores them: schema 3
    rows as they are, schema 1 and 2 float16 rows converted (a unit's vector depends on its
    lines only, so theirs serve too)."""

    def __init__(self, old: sqlite3.Connection, version: str, dimension: int,
                 skip_prefix: str) -> None:
        self.old = old
        self.dimension = dimension
        self.table = "texts" if version == "3" else "units"
        self.convert = version != "3"
        where = "" if version == "3" else f" WHERE conversation_id NOT LIKE '{skip_prefix}%'"
        self.ids = {text_key(lines.encode()): row_id for row_id, lines in
                    old.execute(f"SELECT id, lines FROM {self.table}{where}")}

    def __call__(self, keys: list[bytes]) -> dict[bytes, bytes]:
        wanted = {self.ids[key]: key for key in keys if key in self.ids}
        out: dict[bytes, bytes] = {}
        ids = list(wanted)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = self.old.execute(f"SELECT id, vector FROM {self.table} WHERE id IN "
                                    f"({','.join('?' * len(part))})", part).fetchall()
            blobs = [blob for _, blob in rows]
            if self.convert:
                blobs = vectors.encode(vectors.decode_float16(blobs, self.dimension))
            out.update((wanted[row_id], blob) for (row_id, _), blob in zip(rows, blobs,
                                                                              strict=True))
        return out
