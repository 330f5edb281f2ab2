"""Memory search reads a query's words as the index stored them (accents folded by the same
tokenizer), and the embedder's word cache stays bounded in bytes (issue 28)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from doppel.memory import index as memory_index
from doppel.memory import layout
from doppel.memory.embedder import MAX_CACHED_WORD, StaticEmbedder
from doppel.memory.search import TOKENIZE, fold_words
from memory_builders import write_memory_dataset

TEXT = "Herr Müller bringt den Kaffee ins Café in München; в Звенигороде мой дом, Ærø"


def test_query_words_fold_exactly_as_the_index_stores_them() -> None:
    assert f"tokenize='{TOKENIZE}'" in layout.SCHEMA  # one tokenizer for both
    db = sqlite3.connect(":memory:")
    db.executescript(f"CREATE VIRTUAL TABLE fts USING fts5(body, tokenize='{TOKENIZE}');"
                     "CREATE VIRTUAL TABLE vocab USING fts5vocab(fts, row);")
    db.execute("INSERT INTO fts VALUES (?)", (TEXT,))
    stored = {term for (term,) in db.execute("SELECT term FROM vocab")}
    words = fold_words(TEXT)
    assert set(words) == stored
    assert words[:2] == ["herr", "muller"] and "cafe" in words and "munchen" in words
    assert fold_words("MÜLLER") == fold_words("Muller") == ["muller"]


def test_accented_query_words_find_the_indexed_words(tmp_path: Path) -> None:
    dataset = write_memory_dataset(tmp_path / "ds")
    lines = (dataset / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    row["messages"][0]["text"] = TEXT
    lines[0] = json.dumps(row, ensure_ascii=False)
    (dataset / "conversations.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    memory_index.build_index(dataset, progress=False)
    with memory_index.open_index(dataset) as index:
        searcher = index._searcher
        searcher._load()  # what a first search does
        terms = searcher._terms
        for typed, plain in (("Müller", "Muller"), ("café", "cafe"), ("München", "Munchen")):
            assert terms(typed) == terms(plain) != [], typed


def test_the_word_cache_keeps_only_short_words() -> None:
    table = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    embedder = StaticEmbedder("test", 8, lambda word: [ord(c) % 64 for c in word[:16]],
                              lambda ids: table[ids], np.ones(64, dtype=np.float32))
    long_word = "x" * (MAX_CACHED_WORD + 1)
    texts = ["hello there", f"hello {long_word}", f"{long_word}y"]
    vectors = embedder.embed(texts)
    assert sorted(embedder._words._number) == ["hello", "there"]
    assert len(embedder._words._tokens) == 2
    assert np.allclose(vectors[1], embedder.embed([f"hello {long_word}"])[0])
    assert np.isfinite(vectors).all() and not np.allclose(vectors[0], vectors[1])
