"""The index stores vectors at 8 bits and each distinct text once (issue 29, item 4): cosines
survive the quantisation, and two units with one text still belong to their own chats."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from doppel.data.dataset import CONVERSATIONS, MANIFEST, SCHEMA_VERSION
from doppel.memory import MEMORY_FILE, Scope, build_index, open_index
from doppel.memory.embedder import load_embedder
from doppel.memory.facts import holds
from doppel.memory.vectors import decode, decode_float16, encode
from doppel.sample.scripts import FACT_WORDS

TEXTS = ["Biscuit got into the trash again, vet on Monday", "Дача в Звенигороде, приезжай",
         "how was the interview at the observatory?", "lol ok", "", "see you at Starlight Lanes",
         *[f"the {word} thing again" for word in FACT_WORDS]]


def test_int8_rows_keep_their_cosines() -> None:
    vectors = load_embedder().embed(TEXTS)
    stored = encode(vectors)
    assert {len(blob) for blob in stored} == {vectors.shape[1]}  # one byte a dimension
    back = decode(stored, vectors.shape[1])
    assert not back[TEXTS.index("")].any()  # a text without words stays all zero
    shown = [i for i, text in enumerate(TEXTS) if text]
    assert np.einsum("ij,ij->i", back[shown], vectors[shown]).min() > 0.999
    cosines, read = vectors @ vectors.T, back @ back.T
    assert np.abs(cosines - read).max() < 0.005  # ranks change only between near-ties
    older = [row.astype(np.float16).tobytes() for row in vectors]  # schema 2's rows
    assert np.abs(decode_float16(older, vectors.shape[1]) - vectors).max() < 1e-3


def _dataset(path: Path, chats: dict[str, list[list[tuple[str, str]]]]) -> Path:
    """A dataset folder, chat id -> conversations of (speaker, text); the chat is named after
    its id, everyone's id is "u" + their name."""
    path.mkdir(parents=True)
    rows, speakers, t = [], {}, 1_700_000_000.0
    for chat_id, conversations in chats.items():
        for n, lines in enumerate(conversations):
            messages = []
            for speaker, text in lines:
                t += 60
                entry = speakers.setdefault("u" + speaker.lower(),
                                            {"name": speaker, "messages": 0, "chats": []})
                entry["messages"] += 1
                entry["chats"] = sorted({*entry["chats"], chat_id})
                messages.append({"speaker_id": "u" + speaker.lower(), "speaker": speaker,
                                 "time": t, "text": text})
            rows.append({"id": f"{chat_id}-{n}", "split": "train", "messages": messages,
                         "chat": {"id": chat_id, "name": chat_id.title(),
                                  "type": "personal_chat"}})
    (path / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    manifest = {"schema_version": SCHEMA_VERSION, "me": {"id": "ualex", "name": "Alex"},
                "speakers": speakers, "fingerprint": "test"}
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_identical_stretches_are_embedded_and_stored_once_but_read_in_their_own_chats(
        tmp_path: Path) -> None:
    """Alex pasted the same lines to Sam and to Nora: one text row, one embedding, two units,
    each found in its own friend's scope only; Sam's own secret never reaches Nora."""
    same = [("Alex", "the spare key is under the blue walrus pot"), ("Alex", "see you at 8")]
    data = _dataset(tmp_path / "ds", {
        "sam": [same, [("Sam", "my locker code is 5512"), ("Alex", "noted")]],
        "nora": [same, [("Nora", "how was the trip"), ("Alex", "long, tell you later")]],
    })
    build_index(data, progress=False)
    with sqlite3.connect(data / MEMORY_FILE) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        texts = db.execute("SELECT count(*) FROM texts").fetchone()[0]
    assert (meta["units"], meta["texts"], meta["units_embedded"]) == ("4", "3", "3")
    assert texts == 3
    with open_index(data) as memory:
        for partner, chat in (("usam", "sam"), ("unora", "nora")):
            hits = memory.search("walrus pot key", Scope.with_partner(partner), k=5)
            assert holds(hits, "walrus") and {m.chat_id for m in hits} == {chat}
        assert not holds(memory.search("locker code", Scope.with_partner("unora"), k=10),
                         "5512")
        # the owner reads both; the same text twice is one memory (near-duplicates collapse)
        assert [m.conversation_id for m in memory.search("walrus pot key", Scope.everything(),
                                                         k=5) if holds([m], "walrus")] in (
            ["sam-0"], ["nora-0"])


@pytest.mark.parametrize("started_before_reading", [False, True])
def test_a_big_datasets_index_is_built_in_a_process_beside_the_report(
        sample_dataset, tmp_path, monkeypatch, started_before_reading):
    """Past BUILD_BESIDE_FROM, prepare builds the index in a spawned process while it writes
    the report (past START_BUILDER_FROM, a process started before reading): the same index as
    in-process, and the child's error reaches the caller."""
    from doppel.data import pipeline
    from doppel.data.options import PrepareOptions
    from doppel.errors import DoppelError
    from doppel.memory.options import EmbedderOptions

    export = sample_dataset.path.parent / "export"  # the session's sample, prepared in-process
    monkeypatch.setattr(pipeline, "BUILD_BESIDE_FROM", 0)
    if started_before_reading:  # the process started (and its embedder loaded) before reading
        monkeypatch.setattr(pipeline, "START_BUILDER_FROM", 0)
    pipeline.prepare_dataset(export, tmp_path / "beside", PrepareOptions(), progress=False)
    read = []
    for folder in (sample_dataset.path, tmp_path / "beside"):
        with sqlite3.connect(folder / MEMORY_FILE) as db:
            read.append(db.execute("SELECT id, conversation_id, lines, vector FROM units "
                                   "ORDER BY id").fetchall())
    assert read[0] == read[1] and len(read[0]) > 100
    with pytest.raises(DoppelError, match="not a folder"):
        pipeline.prepare_dataset(export, tmp_path / "broken", PrepareOptions(
            memory_index=EmbedderOptions(embedder=tmp_path / "missing")), progress=False)
    assert not (tmp_path / "broken").exists()
