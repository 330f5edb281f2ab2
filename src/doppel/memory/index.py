"""The memory index: one owner-only SQLite file in the dataset folder (memory.sqlite) holding
units of masked conversation, an FTS5 table (BM25) and their dense vectors.

Built to a temporary name and renamed, streamed batch by batch (memory stays flat on a
million-message export). A rebuild reuses the vectors of units an older index already holds
(same embedder), so adding a newer export embeds only what is new; the bot's own units carry
over. The file records its embedder's name and dimension, and refuses another.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from doppel.atomic import atomic_path, owner_only
from doppel.errors import DoppelError
from doppel.memory import vectors
from doppel.memory.embedder import DEFAULT_EMBEDDER, Embedder, load_embedder
from doppel.memory.layout import SCHEMA, Lender, Writer
from doppel.memory.records import Memory, NewUnit
from doppel.memory.scope import Scope
from doppel.memory.search import Searcher
from doppel.memory.units import batched, dataset_units, unit_key

if TYPE_CHECKING:
    from doppel.data.forgotten import Forgotten

MEMORY_FILE = "memory.sqlite"  # inside the dataset folder, owner-only
# 3: each distinct text stored once with an int8 vector (layout.py); 2 held float16 vectors
# per unit; 1 held names as participants, which collide
SCHEMA_VERSION = 3
BATCH = 4096  # units embedded and written at a time
READS_VECTORS = ("1", "2", str(SCHEMA_VERSION))  # versions whose vectors a rebuild reuses
CARRIES_BOT_UNITS = ("2", str(SCHEMA_VERSION))  # versions whose bot units name person ids
BOT_PREFIX = "bot:"  # conversation ids of units the bot added: kept across rebuilds


def build_index(dataset_dir: Path, embedder: str | Path | None = None,
                progress: bool = True, *, reuse: Path | None = None) -> Path:
    """(Re)build DATASET/memory.sqlite from the dataset's conversations (to a temporary name,
    renamed on success); texts an older index (`reuse`, default the file being replaced)
    already holds keep their vectors when its embedder is the same, so a dataset grown by a
    newer export embeds only what is new. Returns the index path."""
    from doppel.data.dataset import load_dataset
    from doppel.data.forgotten import read_forgotten

    dataset = load_dataset(Path(dataset_dir))  # its conversations() leave forgotten ones out
    forgotten = read_forgotten(dataset.path)
    target = dataset.path / MEMORY_FILE
    model = load_embedder(embedder)
    old = _reusable(reuse if reuse is not None else target, model)
    started = time.perf_counter()
    with owner_only(), atomic_path(target, force=True) as tmp:
        db = sqlite3.connect(tmp, check_same_thread=False)  # its writes run in one thread
        try:
            _create(db, model, embedder, dataset.fingerprint, forgotten.digest)
            lend = None if old is None else Lender(old, _version_of(old), model.dimension,
                                                  BOT_PREFIX)
            with _fewer_collections(), Writer(db, model.embed, lend, background=True) as writer:
                units = _fill(writer, dataset_units(dataset), progress)
                if old is not None and _version_of(old) in CARRIES_BOT_UNITS:
                    units += _carry_bot_units(writer, old, model.dimension,
                                              forgotten.units)
            counts = {"units": units, "texts": writer.next_text - 1,
                      "units_embedded": writer.embedded, "units_reused": writer.reused}
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [(key, str(value)) for key, value in counts.items()])
            db.commit()
        finally:
            db.close()
            if old is not None:
                old.close()
    if progress:
        print(f"memory index: {units} units, {counts['texts']} distinct texts "
              f"({writer.embedded} embedded, {writer.reused} reused) in "
              f"{time.perf_counter() - started:.1f} s -> {target}", file=sys.stderr)
    return target


def preload(embedder: str | Path | None = None) -> None:
    """Load the embedder (and what a build imports) in a process that will build an index
    soon: `doppel prepare` starts one so this runs while it reads the export."""
    load_embedder(embedder)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """A build makes millions of short-lived tuples and lists (rows, lines, units) and no
    cycles to speak of, so the default young-generation threshold (700) runs the cyclic
    collector thousands of times for nothing: about a tenth of the build's CPU. Raised for the
    build, put back after."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _create(db: sqlite3.Connection, model: Embedder, spec: str | Path | None,
            fingerprint: str, forgotten: str) -> None:
    db.execute("PRAGMA journal_mode=OFF")  # a temporary file: a crash leaves nothing to recover
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(SCHEMA)
    source = DEFAULT_EMBEDDER if spec is None else str(Path(spec).resolve()) \
        if Path(str(spec)).is_dir() else str(spec)
    meta = {"schema_version": str(SCHEMA_VERSION), "embedder": model.name,
            "embedder_source": source, "dimension": str(model.dimension),
            "vector_format": "int8", "dataset_fingerprint": fingerprint,
            "forgotten_sha256": forgotten,  # the forget record it was built without
            "created": str(time.time())}
    db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())


def _fill(writer: Writer, units: Iterable[NewUnit], progress: bool) -> int:
    count = 0
    with _progress(progress) as advance:
        for batch in batched(units, BATCH):
            writer.add(batch)
            count += len(batch)
            advance(len(batch))
    return count


def _carry_bot_units(writer: Writer, old: sqlite3.Connection, dimension: int,
                     forgotten: Collection[str] = ()) -> int:
    """The bot's own conversations are not in the dataset: copy them over as they are, but for
    the ones the owner told doppel to forget (by unit key)."""
    rows = old.execute(
        "SELECT conversation_id, chat_id, chat_name, participants, names, start, end, "
        f"lines, vector FROM units WHERE conversation_id LIKE '{BOT_PREFIX}%' ORDER BY id"
    ).fetchall()
    rows = [row for row in rows if unit_key(row[1], orjson.loads(row[7])) not in forgotten]
    if not rows:
        return 0
    blobs = [row[8] for row in rows]
    if _version_of(old) != str(SCHEMA_VERSION):
        blobs = vectors.encode(vectors.decode_float16(blobs, dimension))
    writer.add([_row_unit(row[:8]) for row in rows], blobs)
    return len(rows)


def _row_unit(row: tuple) -> NewUnit:
    conversation_id, chat_id, chat_name, participants, names, start, end, lines = row
    return NewUnit(conversation_id, chat_id, chat_name, tuple(orjson.loads(participants)),
                   start, end, tuple((s, t) for s, t in orjson.loads(lines)),
                   tuple(orjson.loads(names)))


def _version_of(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return row[0] if row else None


def _reusable(path: Path, model: Embedder) -> sqlite3.Connection | None:
    """An older index made by the same embedder, opened read-only (a unit's vector depends on
    its lines only, so versions 1 and 2's vectors serve too); None for anything else."""
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
    older doppel (another memory index version) is rebuilt (saying so either way).
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
    elif build_if_missing and (version := _version(path)) not in (None, str(SCHEMA_VERSION)):
        lost = ("; the bot's remembered exchanges in it are not carried over (they name people "
                "by name, not id)" if version not in CARRIES_BOT_UNITS else "")
        print(f"{path} is from an older doppel (memory index version {version}): rebuilding "
              f"it, reusing its vectors{lost}", file=sys.stderr)
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
        self._file = _identity(self.path)

    def _follow(self) -> None:
        """When `memory forget`, `memory build` or `prepare --force` renamed a rebuilt file into
        place, read and write that one from now on: what the bot adds would otherwise go into
        the replaced file and be lost. One of another schema or embedder waits for a restart."""
        now = _identity(self.path)
        if now is None or now == self._file:
            return
        self._file = now
        try:
            db = _connect(self.path)
        except sqlite3.DatabaseError:
            return
        try:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError:
            db.close()
            return
        same = ("schema_version", "embedder", "dimension")
        if [meta.get(key) for key in same] != [self.meta.get(key) for key in same]:
            db.close()
            return
        self._db.close()
        self._db, self.meta = db, meta
        self._searcher = Searcher(db, self.embedder)
        self._forgotten = (None, set())

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
            self._follow()
            return self._searcher.people()

    def readable(self, scope: Scope, before: float | None = None) -> int:
        """How many units `scope` may read (0: an empty scope)."""
        with self._lock:
            self._follow()
            return int(self._searcher.allowed(scope, before, (), self._hidden()).sum())

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
            self._follow()
            return self._searcher.search(query, scope, before, exclude_conversations, k,
                                         token_budget, self._hidden())

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
            built_without = forgotten.digest == self.meta.get("forgotten_sha256")
            self._forgotten = (stamp, _forgotten_ids(self._db, forgotten)
                               if forgotten and not built_without else set())
        return self._forgotten[1]

    def add_units(self, units: Iterable[NewUnit]) -> None:
        """Index more units (the bot's own finished conversations), committed at once."""
        units = list(units)
        if not units:
            return
        with self._lock:
            self._follow()
            ids = Writer(self._db, self.embedder.embed).add(units)
            self._db.commit()
            marks = ",".join("?" * len(ids))
            stored = dict(self._db.execute(
                f"SELECT id, vector FROM units WHERE id IN ({marks})", ids))
            self._searcher.added(ids, units, [stored[unit_id] for unit_id in ids])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> MemoryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` now (a rename puts another there)."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _forgotten_ids(db: sqlite3.Connection, forgotten: Forgotten) -> set[int]:
    """Ids of units forgotten by key, or whose time range meets a forgotten span (a neighbour
    sharing a turn with a forgotten stretch, or a stretch of an index cut otherwise, e.g. before
    a `prepare --force`, holding one inside)."""
    ids: set[int] = set()
    if forgotten.units:  # only the bot's units need their key: the spans cover the rest
        ids.update(i for i, chat, lines in db.execute(
            f"SELECT id, chat_id, lines FROM units WHERE conversation_id LIKE '{BOT_PREFIX}%'")
            if unit_key(chat, orjson.loads(lines)) in forgotten.units)
    for chat in forgotten.spans:
        ids.update(i for i, begun, ended in db.execute(
            "SELECT id, start, end FROM units WHERE chat_id = ?", (chat,))
            if forgotten.overlaps(chat, begun, ended))
    return ids


def index_size(path: Path) -> int:
    """Bytes on disk (for reports and the bench)."""
    return os.path.getsize(path)
