"""One query against an open index: scope and time filter first, then BM25 (FTS5) and vector
candidates, fused and ranked (ranking.py). Vectors are read into memory once, on first use."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Sequence

import numpy as np
import orjson

from doppel.memory import vectors
from doppel.memory.embedder import Embedder
from doppel.memory.ranking import fuse, pick, with_recency
from doppel.memory.records import Memory, NewUnit
from doppel.memory.scope import Scope

CANDIDATES = 50  # from each list, before fusion
MAX_TERMS = 8  # the rarest words of a query that the lexical search uses
COMMON_SHARE = 0.05  # a word in more than this share of units says little: left out
MAX_DOCS = 2000  # ... and so does one in more units than this (BM25 scores every match)
# a vector candidate must stand out from the scope's units (z-score): a static embedder is close
# to everything a little, and without a floor its noise outvotes a rare shared word
DENSE_MIN_Z = 4.0
STEM_FROM = 7  # words this long are searched as a prefix (all but their last two letters)
# above this many allowed units, vectors are ranked in two passes: Hamming distance on one sign
# bit per (centred) dimension over all of them, then exact cosine for the PREFILTER nearest; the
# z-score floor's mean and spread come from a stride sample of STAT_SAMPLE of them
PREFILTER_FROM = 20_000
PREFILTER = 8192
STAT_SAMPLE = 2048
TOKENIZE = "unicode61 remove_diacritics 2"  # the index's FTS5 tokenizer (index.py's schema)
# what we talked about last: the units of the scope's latest conversations are always candidates,
# ranked by their cosine to the query (a friend's "how's the dog?" follows up what was said last)
RECENT_CONVERSATIONS = 3
RECENT_LOOKBACK = 256  # the latest units looked at to find those conversations


def fold_words(text: str) -> list[str]:
    """The words of `text` in order, as the index stores them: lower-cased and folded by the
    same tokenizer ("Müller" -> "muller", "café" -> "cafe"; "й" stays, as the index keeps it),
    so a query's words are found in the index's vocabulary as typed."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"CREATE VIRTUAL TABLE q USING fts5(body, tokenize='{TOKENIZE}')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(q, instance)")
        db.execute("INSERT INTO q VALUES (?)", (text,))
        return [term for (term,) in db.execute("SELECT term FROM v ORDER BY offset")]


class Searcher:
    """The state a search needs besides SQLite: unit metadata and vectors as arrays."""

    def __init__(self, db: sqlite3.Connection, embedder: Embedder) -> None:
        self.db = db
        self.embedder = embedder
        self._loaded = False
        self._by_end = np.zeros(0, dtype=np.int64)  # rows in time order (_latest_rows)

    def _load(self) -> None:
        """Chats, conversations, ends and vectors of every unit, as numpy arrays."""
        ids, chats, conversations, ends, texts = [], [], [], [], []
        self.chat_codes: dict[str, int] = {}
        self.chat_members: list[frozenset[str]] = []
        self.conversation_codes: dict[str, int] = {}
        rows = self.db.execute(
            "SELECT id, chat_id, participants, conversation_id, end, text FROM units")
        for unit_id, chat, participants, conversation, end, text in rows:
            ids.append(unit_id)
            chats.append(self._chat_code(chat, participants))
            conversations.append(self.conversation_codes.setdefault(
                conversation, len(self.conversation_codes)))
            ends.append(end)
            texts.append(text)
        self.ids = np.asarray(ids, dtype=np.int64)
        self.chats = np.asarray(chats, dtype=np.int32)
        self.conversations = np.asarray(conversations, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.float64)
        self.row_of = {unit_id: row for row, unit_id in enumerate(ids)}
        self.units = len(ids)
        self.vectors = self._unit_vectors(np.asarray(texts, dtype=np.int64))
        self._bits()
        self._loaded = True

    def _unit_vectors(self, texts: np.ndarray) -> np.ndarray:
        """float32 rows in memory (int8 on disk, each distinct text once: vectors.py), one per
        unit: numpy scores float32 fastest."""
        text_ids, blobs = [], []
        for text_id, blob in self.db.execute("SELECT id, vector FROM texts"):
            text_ids.append(text_id)
            blobs.append(blob)
        matrix = vectors.decode(blobs, self.embedder.dimension)
        position = np.zeros(max(text_ids, default=0) + 1, dtype=np.int64)
        position[text_ids] = np.arange(len(text_ids))
        return matrix[position[texts]] if len(texts) else matrix[:0]

    def _bits(self) -> None:
        """One sign bit per dimension of each vector minus the mean vector, packed to uint64
        words stored word-major: a Hamming pass over every unit then runs a few long
        contiguous loops over 64 bytes a unit instead of reading its 2 KB."""
        self.center = (self.vectors.mean(axis=0) if self.units
                       else np.zeros(self.embedder.dimension, dtype=np.float32))
        self.bits = np.concatenate(  # by blocks: no (units x dimension) boolean at once
            [_pack(self.vectors[i:i + 16384] > self.center)
             for i in range(0, max(self.units, 1), 16384)], axis=1)

    def _chat_code(self, chat: str, participants: str) -> int:
        """A chat's number; a chat's members (person ids) are the union over its units (the
        bot's units name everyone it has seen in its chat, and the persona)."""
        code = self.chat_codes.get(chat)
        names = frozenset(orjson.loads(participants))
        if code is None:
            code = self.chat_codes[chat] = len(self.chat_members)
            self.chat_members.append(names)
        elif not names <= self.chat_members[code]:
            self.chat_members[code] = self.chat_members[code] | names
        return code

    def added(self, ids: list[int], units: Sequence[NewUnit], stored: list[bytes]) -> None:
        """Take units just written (the bot's) into the arrays without reading everything."""
        if not self._loaded:
            return
        rows = vectors.decode(stored, self.embedder.dimension)
        self.vectors = np.concatenate([self.vectors, rows])
        chats = [self._chat_code(u.chat_id, orjson.dumps(list(u.participants)).decode())
                 for u in units]
        conversations = [self.conversation_codes.setdefault(
            u.conversation_id, len(self.conversation_codes)) for u in units]
        for unit_id in ids:
            self.row_of[unit_id] = len(self.row_of)
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.chats = np.concatenate([self.chats, np.asarray(chats, dtype=np.int32)])
        self.conversations = np.concatenate([self.conversations,
                                             np.asarray(conversations, dtype=np.int64)])
        self.ends = np.concatenate([self.ends, [u.end for u in units]])
        self.units += len(units)
        self.bits = np.concatenate([self.bits, _pack(rows > self.center)],
                                   axis=1)

    def people(self) -> set[str]:
        if not self._loaded:
            self._load()
        return set().union(*self.chat_members) if self.chat_members else set()

    def allowed(self, scope: Scope, before: float | None, exclude: Collection[str],
                hidden: Collection[int] = ()) -> np.ndarray:
        """Boolean mask over units: in scope, ended before `before`, not excluded, not hidden
        (forgotten: masked before ranking, so they take no candidate, duplicate or budget
        place from what may be shown)."""
        if not self._loaded:
            self._load()
        chats = np.asarray([scope.allows(members) for members in self.chat_members] or [False])
        mask = chats[self.chats] if self.units else np.zeros(0, dtype=bool)
        if before is not None:
            mask &= self.ends < before
        codes = [self.conversation_codes[c] for c in exclude if c in self.conversation_codes]
        if codes:
            mask &= ~np.isin(self.conversations, codes)
        if hidden:
            mask &= ~np.isin(self.ids, np.fromiter(hidden, dtype=np.int64))
        return mask

    def search(self, query: str, scope: Scope, before: float | None,
               exclude: Collection[str], k: int, token_budget: int | None,
               hidden: Collection[int] = ()) -> list[Memory]:
        mask = self.allowed(scope, before, exclude, hidden)
        if not query.strip() or not mask.any() or k <= 0:
            return []
        vector = self.embedder.embed([query])[0]
        lexical = self._lexical(query, mask)
        dense = self._dense(query, mask, vector)
        scores = fuse([lexical, dense, self._recent(mask, vector)])
        now = before if before is not None else float(self.ends.max())
        ends = {unit: float(self.ends[self.row_of[unit]]) for unit in scores}
        scores = with_recency(scores, ends, now)
        order = sorted(scores, key=lambda unit: -scores[unit])[: 4 * k + 8]
        return pick(self._memories(order, scores), k, token_budget)

    def _terms(self, query: str) -> list[str]:
        """FTS5 terms for the query's distinct words that are rare enough in the index to mean
        something, rarest first, among its last 4 * MAX_TERMS distinct words
        (a long earlier turn must not crowd out the newest); a long word becomes a prefix query
        without its last two letters, a crude stemmer for any language ("Звенигороде" finds
        "Звенигородом", "pelicans" "pelican")."""
        words = list(dict.fromkeys(w for w in fold_words(query) if len(w) > 1))
        limit = max(50, min(COMMON_SHARE * self.units, MAX_DOCS))
        counted = []
        for word in words[-4 * MAX_TERMS:]:  # the newest: what the friend just said
            stem = word[:-2] if len(word) >= STEM_FROM else word
            if stem == word:
                row = self.db.execute("SELECT doc FROM vocab WHERE term = ?", (word,)).fetchone()
            else:
                row = self.db.execute("SELECT sum(doc) FROM vocab WHERE term >= ? AND term < ?",
                                      (stem, stem + "\U0010ffff")).fetchone()
            count = (row[0] or 0) if row else 0
            if 0 < count <= limit:
                term = '"' + stem.replace('"', '""') + '"'
                counted.append((count, term + "*" if stem != word else term))
        return [term for _, term in sorted(counted)[:MAX_TERMS]]

    def _lexical(self, query: str, mask: np.ndarray) -> list[int]:
        """Unit ids by BM25, best first, among the allowed ones."""
        terms = self._terms(query)
        if not terms:
            return []
        out = []
        for (unit_id,) in self.db.execute(
                "SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT ?",
                (" OR ".join(terms), CANDIDATES * 20)):
            row = self.row_of.get(unit_id)
            if row is not None and mask[row]:
                out.append(unit_id)
                if len(out) == CANDIDATES:
                    break
        return out

    def _dense(self, query: str, mask: np.ndarray, vector: np.ndarray | None = None
               ) -> list[int]:
        """Unit ids by cosine to the query's vector, best first, among the allowed ones."""
        if vector is None:
            vector = self.embedder.embed([query])[0]
        if not vector.any():
            return []
        rows = np.flatnonzero(mask)
        if len(rows) > PREFILTER_FROM:
            mean, std = self._spread(rows, vector)
            rows = self._nearest_bits(rows, vector)
            scores = _dot(self.vectors[rows], vector)
        else:
            # one pass over the whole matrix beats gathering rows when most are allowed
            whole = len(rows) > self.units // 4
            scores = _dot(self.vectors, vector)[rows] if whole else _dot(self.vectors[rows],
                                                                          vector)
            mean, std = float(scores.mean()), float(scores.std())
        floor = max(0.0, mean + DENSE_MIN_Z * std)
        count = min(CANDIDATES, len(rows))
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top])]
        return [int(self.ids[rows[i]]) for i in top if scores[i] > floor]

    def _recent(self, mask: np.ndarray, vector: np.ndarray) -> list[int]:
        """The units of the RECENT_CONVERSATIONS latest allowed conversations, by cosine to the
        query's vector (no floor: being recent is their claim), best first."""
        if RECENT_CONVERSATIONS <= 0:
            return []
        latest = self._latest_rows(mask)
        conversations = list(dict.fromkeys(self.conversations[latest].tolist()))
        picked = latest[np.isin(self.conversations[latest],
                                conversations[:RECENT_CONVERSATIONS])]
        if not len(picked):
            return []
        scores = _dot(self.vectors[picked], vector) if vector.any() else -self.ends[picked]
        return [int(self.ids[row]) for row in picked[np.argsort(-scores, kind="stable")]]

    def _latest_rows(self, mask: np.ndarray) -> np.ndarray:
        """Up to RECENT_LOOKBACK allowed rows, latest first: read from the end of the units'
        time order (kept once per load) a block at a time, so a scope of every chat costs one
        block, not a pass over a million units."""
        if len(self._by_end) != self.units:  # first use, or the bot added units
            self._by_end = np.argsort(self.ends, kind="stable")
        found: list[np.ndarray] = []
        count, stop, block = 0, self.units, RECENT_LOOKBACK * 4
        while stop > 0 and count < RECENT_LOOKBACK:
            rows = self._by_end[max(0, stop - block):stop][::-1]
            rows = rows[mask[rows]]
            found.append(rows)
            count += len(rows)
            stop -= block
            block *= 2  # a narrow scope is found in a few doubling steps
        return np.concatenate(found)[:RECENT_LOOKBACK] if found else np.zeros(0, np.int64)

    def _spread(self, rows: np.ndarray, vector: np.ndarray) -> tuple[float, float]:
        """Mean and standard deviation of the query's cosine over `rows`, from a stride
        sample of about STAT_SAMPLE of them (the floor needs them to a few per cent)."""
        sample = _dot(self.vectors[rows[::max(1, len(rows) // STAT_SAMPLE)]], vector)
        return float(sample.mean()), float(sample.std())

    def _nearest_bits(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """About PREFILTER of `rows` (ties at the cut kept), the nearest to the query by
        Hamming distance of sign bits."""
        query = _pack((vector > 0)[None, :])[:, 0]
        whole = len(rows) == self.units
        distance = np.zeros(len(rows), dtype=np.uint16)
        for word, bits in zip(query, self.bits, strict=True):
            distance += np.bitwise_count((bits if whole else bits[rows]) ^ word)
        # the cut from a histogram of distances (0..bits): cheaper than a partition
        cut = int(np.searchsorted(np.cumsum(np.bincount(distance)), PREFILTER))
        return rows[distance <= cut]

    def _memories(self, order: list[int], scores: dict[int, float]) -> list[Memory]:
        if not order:
            return []
        marks = ",".join("?" * len(order))
        rows = {row[0]: row for row in self.db.execute(
            "SELECT id, conversation_id, chat_id, chat_name, participants, start, end, lines, "
            f"names FROM units WHERE id IN ({marks})", order)}
        out = []
        for unit_id in order:
            _, conversation, chat, name, participants, start, end, lines, names = rows[unit_id]
            out.append(Memory(unit_id, conversation, chat, name,
                              tuple(orjson.loads(participants)), start, end,
                              tuple((s, t) for s, t in orjson.loads(lines)),
                              round(scores[unit_id], 6), tuple(orjson.loads(names))))
        return out


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Matrix-vector product by einsum, not `@`: one query's product is memory-bound, and BLAS
    threads waiting on each other cost 30x on a busy machine."""
    return np.einsum("ij,j->i", matrix, vector)


def _pack(signs: np.ndarray) -> np.ndarray:
    """Rows of booleans as uint64 words, word-major: shape (words, rows)."""
    packed = np.packbits(signs, axis=1)
    pad = -packed.shape[1] % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(np.ascontiguousarray(packed).view(np.uint64).T)
