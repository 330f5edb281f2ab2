"""The memory index: one owner-only SQLite file in the dataset folder (memory.sqlite) holding
units of masked conversation, an FTS5 table (BM25) and their dense vectors.

Built to a temporary name and renamed, streamed batch by batch (memory stays flat on a
million-message export). A rebuild reuses the vectors of units an older index already holds
(same embedder), so adding a newer export embeds only what is new; the bot's own units carry
over. The file records its embedder's name and dimension, and refuses another.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson

from doppel.atomic import atomic_path, owner_only
from doppel.errors import DoppelError
from doppel.memory.embedder import DEFAULT_EMBEDDER, Embedder, load_embedder
from doppel.memory.records import Memory, NewUnit
from doppel.memory.scope import Scope
from doppel.memory.search import Searcher
from doppel.memory.units import batched, dataset_units, unit_key, unit_text

if TYPE_CHECKING:
    from doppel.data.forgotten import Forgotten

MEMORY_FILE = "memory.sqlite"  # inside the dataset folder, owner-only
# 2: participants are person ids (names beside them, for display); 1 held names, which collide
SCHEMA_VERSION = 2
BATCH = 2048  # units embedded and written at a time
READS_VECTORS = ("1", str(SCHEMA_VERSION))  # versions whose vectors a rebuild reuses
BOT_PREFIX = "bot:"  # conversation ids of units the bot added: kept across rebuilds
HIDDEN_SLACK = 50  # extra hits a search asks for when its (stale) index holds forgotten units

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE units (id INTEGER PRIMARY KEY, key TEXT NOT NULL, conversation_id TEXT NOT NULL,
  chat_id TEXT NOT NULL, chat_name TEXT NOT NULL, participants TEXT NOT NULL,
  names TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, lines TEXT NOT NULL,
  vector BLOB NOT NULL);
CREATE VIRTUAL TABLE fts USING fts5(body, content='', tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE vocab USING fts5vocab(fts, row);
"""


def build_index(dataset_dir: Path, embedder: str | Path | None = None,
                progress: bool = True, *, reuse: Path | None = None) -> Path:
    """(Re)build DATASET/memory.sqlite from the dataset's conversations (to a temporary name,
    renamed on success); units an older index (`reuse`, default the file being replaced)
    already holds keep their vectors when its embedder is the same, so a dataset grown by a
    newer export embeds only what is new. Returns the index path."""
    from doppel.data.dataset import load_dataset
    from doppel.data.forgotten import read_forgotten

    dataset = load_dataset(Path(dataset_dir))  # its conversations() leave forgotten ones out
    target = dataset.path / MEMORY_FILE
    model = load_embedder(embedder)
    old = _reusable(reuse if reuse is not None else target, model)
    started = time.perf_counter()
    with owner_only(), atomic_path(target, force=True) as tmp:
        db = sqlite3.connect(tmp)
        try:
            _create(db, model, embedder, dataset.fingerprint)
            counts = _fill(db, dataset_units(dataset), model, old, progress)
            if old is not None and _same_schema(old):  # an older one's bot units hold names
                counts["units"] += _carry_bot_units(db, old, read_forgotten(dataset.path).units)
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [("units" if key == "units" else f"units_{key}", str(value))
                            for key, value in counts.items()])
            db.commit()
        finally:
            db.close()
            if old is not None:
                old.close()
    if progress:
        print(f"memory index: {counts['units']} units ({counts['embedded']} embedded, "
              f"{counts['reused']} reused) in {time.perf_counter() - started:.1f} s -> {target}",
              file=sys.stderr)
    return target


def _create(db: sqlite3.Connection, model: Embedder, spec: str | Path | None,
            fingerprint: str) -> None:
    db.execute("PRAGMA journal_mode=OFF")  # a temporary file: a crash leaves nothing to recover
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(_SCHEMA)
    source = DEFAULT_EMBEDDER if spec is None else str(Path(spec).resolve()) \
        if Path(str(spec)).is_dir() else str(spec)
    meta = {"schema_version": str(SCHEMA_VERSION), "embedder": model.name,
            "embedder_source": source, "dimension": str(model.dimension),
            "dataset_fingerprint": fingerprint, "created": str(time.time())}
    db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())


def _fill(db: sqlite3.Connection, units: Iterable[NewUnit], model: Embedder,
          old: sqlite3.Connection | None, progress: bool) -> dict[str, int]:
    counts = {"units": 0, "embedded": 0, "reused": 0}
    known = _old_keys(old)
    with _progress(progress) as advance:
        for batch in batched(units, BATCH):
            keys = [unit_key(unit) for unit in batch]
            vectors = _vectors(batch, keys, model, old, known)
            _insert(db, batch, keys, vectors)
            reused = sum(key in known for key in keys)
            counts["units"] += len(batch)
            counts["reused"] += reused
            counts["embedded"] += len(batch) - reused
            advance(len(batch))
    return counts


def _vectors(batch: list[NewUnit], keys: list[str], model: Embedder,
             old: sqlite3.Connection | None, known: dict[str, int]) -> list[bytes]:
    """Each unit's vector as float16 bytes: from the older index where it has the unit."""
    out: list[bytes | None] = [None] * len(batch)
    if old is not None:
        wanted = {known[key]: i for i, key in enumerate(keys) if key in known}
        for start in range(0, len(wanted), 500):
            ids = list(wanted)[start:start + 500]
            marks = ",".join("?" * len(ids))
            for unit_id, blob in old.execute(
                    f"SELECT id, vector FROM units WHERE id IN ({marks})", ids):
                out[wanted[unit_id]] = blob
    missing = [i for i, blob in enumerate(out) if blob is None]
    if missing:
        fresh = model.embed([unit_text(batch[i]) for i in missing]).astype(np.float16)
        for row, i in enumerate(missing):
            out[i] = fresh[row].tobytes()
    return out  # type: ignore[return-value]


def _insert(db: sqlite3.Connection, batch: list[NewUnit], keys: list[str],
            vectors: list[bytes]) -> list[int]:
    ids = []
    for unit, key, vector in zip(batch, keys, vectors, strict=True):
        cursor = db.execute(
            "INSERT INTO units (key, conversation_id, chat_id, chat_name, participants, names, "
            "start, end, lines, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, unit.conversation_id, unit.chat_id, unit.chat_name,
             orjson.dumps(list(unit.participants)).decode(),
             orjson.dumps(list(unit.names)).decode(), unit.start, unit.end,
             orjson.dumps([list(line) for line in unit.lines]).decode(), vector))
        ids.append(cursor.lastrowid)
    db.executemany("INSERT INTO fts (rowid, body) VALUES (?, ?)",
                   [(unit_id, unit_text(unit)) for unit_id, unit in zip(ids, batch, strict=True)])
    return ids


def _old_keys(old: sqlite3.Connection | None) -> dict[str, int]:
    if old is None:
        return {}
    return dict(old.execute(
        f"SELECT key, id FROM units WHERE conversation_id NOT LIKE '{BOT_PREFIX}%'"))


def _carry_bot_units(db: sqlite3.Connection, old: sqlite3.Connection,
                     forgotten: Collection[str] = ()) -> int:
    """The bot's own conversations are not in the dataset: copy them over as they are, but for
    the ones the owner told doppel to forget (by unit key)."""
    rows = old.execute(
        "SELECT key, conversation_id, chat_id, chat_name, participants, names, start, end, "
        f"lines, vector FROM units WHERE conversation_id LIKE '{BOT_PREFIX}%' ORDER BY id"
    ).fetchall()
    rows = [row for row in rows if row[0] not in forgotten]
    for row in rows:
        unit = _row_unit(row[1:9])
        _insert(db, [unit], [row[0]], [row[9]])
    return len(rows)


def _row_unit(row: tuple) -> NewUnit:
    conversation_id, chat_id, chat_name, participants, names, start, end, lines = row
    return NewUnit(conversation_id, chat_id, chat_name, tuple(orjson.loads(participants)),
                   start, end, tuple((s, t) for s, t in orjson.loads(lines)),
                   tuple(orjson.loads(names)))


def _same_schema(db: sqlite3.Connection) -> bool:
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return row is not None and row[0] == str(SCHEMA_VERSION)


def _reusable(path: Path, model: Embedder) -> sqlite3.Connection | None:
    """An older index made by the same embedder, opened read-only (a unit's vector depends on
    its chat and lines only, so version 1's vectors serve too); None for anything else."""
    if not path.is_file():
        return None
    try:
        db = _connect(path, readonly=True)
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta.get("schema_version") in READS_VECTORS and (
                meta.get("embedder"), meta.get("dimension")) == (model.name, str(model.dimension)):
            return db
        db.close()
    except sqlite3.DatabaseError:
        pass
    return None


@contextlib.contextmanager
def _progress(show: bool) -> Iterator:
    if not show:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("memory index", total=None)
        yield lambda n: bar.advance(task, n)


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode={'ro' if readonly else 'rw'}"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def open_index(dataset_dir: Path, build_if_missing: bool = True, *,
               embedder: str | Path | None = None) -> MemoryIndex:
    """The dataset's index; a dataset from before memory builds it on first use, and one from an
    older doppel (its scope held names, not person ids) is rebuilt (saying so either way).
    A truncated or foreign file, or one made by another embedder than `embedder` (when
    given): one-line DoppelError."""
    from doppel.data.dataset import load_dataset

    dataset_dir = Path(dataset_dir)
    load_dataset(dataset_dir)  # a dataset of an older schema (people known by name): one line
    path = dataset_dir / MEMORY_FILE
    if not path.is_file():
        if not build_if_missing:
            raise DoppelError(f"{dataset_dir} has no memory index; build it with "
                              f"`doppel memory build {dataset_dir}`")
        print(f"{dataset_dir} has no memory index yet (prepared before memory): building it",
              file=sys.stderr)
        build_index(dataset_dir, embedder)
    elif build_if_missing and _version(path) not in (None, str(SCHEMA_VERSION)):
        print(f"{path} is from an older doppel (its scope names people by name, not id): "
              "rebuilding it; the bot's remembered exchanges in it are not carried over",
              file=sys.stderr)
        build_index(dataset_dir, embedder or _old_embedder(path))
    return MemoryIndex(path, embedder)


def _version(path: Path) -> str | None:
    """An index file's schema version; None when it cannot be read (MemoryIndex says why)."""
    try:
        db = _connect(path, readonly=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def _old_embedder(path: Path) -> str | None:
    """The embedder an older index was built with, to rebuild it alike."""
    db = _connect(path, readonly=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'embedder_source'").fetchone()
    finally:
        db.close()
    return row[0] if row else None


class MemoryIndex:
    """Search over one memory.sqlite: BM25 and vector ranks fused (reciprocal rank), recency,
    near-duplicates collapsed, scope applied before anything is ranked."""

    def __init__(self, path: Path, embedder: str | Path | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = _connect(self.path)
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            self._db.execute("SELECT count(*) FROM units").fetchone()
        except sqlite3.DatabaseError as error:
            raise DoppelError(f"{self.path} is not a readable doppel memory index ({error}); "
                              f"rebuild it with `doppel memory build {self.path.parent}`") from None
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            self._db.close()
            raise DoppelError(f"{self.path} has memory index version "
                              f"{meta.get('schema_version')!r}, this doppel reads "
                              f"{SCHEMA_VERSION}; rebuild it with `doppel memory build "
                              f"{self.path.parent}`")
        self.meta = meta
        self.embedder = self._embedder(embedder)
        self._searcher = Searcher(self._db, self.embedder)
        self._forgotten: tuple[tuple[int, int] | None, set[int]] = (None, set())

    def _embedder(self, spec: str | Path | None) -> Embedder:
        """The embedder the index was built with; another one is refused in one line."""
        name, dimension = self.meta.get("embedder"), self.meta.get("dimension")
        try:
            model = load_embedder(spec if spec is not None else self.meta.get("embedder_source"))
        except DoppelError:
            if spec is not None:
                raise
            self._db.close()
            raise DoppelError(
                f"{self.path} was built with embedder {name} from "
                f"{self.meta.get('embedder_source')}, which cannot be loaded here; rebuild it "
                f"with `doppel memory build {self.path.parent}` (add --embedder PATH for "
                "another one)") from None
        if (model.name, str(model.dimension)) != (name, dimension):
            self._db.close()
            raise DoppelError(
                f"{self.path} was built with embedder {name} ({dimension} dimensions), not "
                f"{model.name} ({model.dimension}); rebuild it with `doppel memory build "
                f"{self.path.parent}{'' if spec is None else f' --embedder {spec}'}`")
        return model

    def people(self) -> set[str]:
        """Every participant id the index knows (the bot's keys among them)."""
        with self._lock:
            return self._searcher.people()

    def readable(self, scope: Scope, before: float | None = None) -> int:
        """How many units `scope` may read (0: an empty scope)."""
        with self._lock:
            return int(self._searcher.allowed(scope, before, ()).sum())

    def search(self, query: str, scope: Scope, *, before: float | None = None,
               exclude_conversations: Collection[str] = (), k: int = 3,
               token_budget: int | None = None) -> list[Memory]:
        """The best `k` memories for `query` readable in `scope`, best first.

        before: only units whose `end` < before (no future); exclude_conversations: never
        these conversations; token_budget: stop adding memories once their text would pass
        it (roughly 4 characters a token)."""
        from doppel.data.dataset import repair_surrogates

        query = repair_surrogates(query)  # half a UTF-16 pair (a shell's undecodable byte)
        with self._lock:
            hidden = self._hidden()
            more = min(len(hidden), HIDDEN_SLACK)
            hits = self._searcher.search(query, scope, before, exclude_conversations, k + more,
                                         token_budget)
            return [hit for hit in hits if hit.unit_id not in hidden][:k] if hidden else hits

    def _hidden(self) -> set[int]:
        """Units of this file the forget record covers: none once `memory forget` rebuilt it,
        but an index opened before (a running server's) or copied in never shows them."""
        from doppel.data.forgotten import FORGOTTEN, read_forgotten

        try:
            found = (self.path.parent / FORGOTTEN).stat()
            stamp: tuple[int, int] | None = (found.st_mtime_ns, found.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._forgotten[0]:
            forgotten = read_forgotten(self.path.parent)
            self._forgotten = (stamp, _forgotten_ids(self._db, forgotten) if forgotten else set())
        return self._forgotten[1]

    def add_units(self, units: Iterable[NewUnit]) -> None:
        """Index more units (the bot's own finished conversations), committed at once."""
        units = list(units)
        if not units:
            return
        keys = [unit_key(unit) for unit in units]
        with self._lock:
            vectors = _vectors(units, keys, self.embedder, None, {})
            ids = _insert(self._db, units, keys, vectors)
            self._db.commit()
            self._searcher.added(ids, units, vectors)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> MemoryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _forgotten_ids(db: sqlite3.Connection, forgotten: Forgotten) -> set[int]:
    """Ids of units forgotten by key, or whose first or last message a forgotten span covers
    (a neighbour sharing a turn with a forgotten stretch)."""
    keys = list(forgotten.units)
    ids: set[int] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        marks = ",".join("?" * len(chunk))
        ids.update(i for (i,) in db.execute(f"SELECT id FROM units WHERE key IN ({marks})", chunk))
    for chat in forgotten.spans:
        ids.update(i for i, begun, ended in db.execute(
            "SELECT id, start, end FROM units WHERE chat_id = ?", (chat,))
            if forgotten.hides(chat, begun) or forgotten.hides(chat, ended))
    return ids


def index_size(path: Path) -> int:
    """Bytes on disk (for reports and the bench)."""
    return os.path.getsize(path)
