"""The fast paths of `doppel prepare` agree exactly with the plain rules they replace."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import orjson

from doppel.data.conversations import Segmenter, join_segments, lone_speaker, plan_conversations
from doppel.data.gaps import GapHistogram, _edges
from doppel.data.spool import encode
from doppel.sources import jsonstream
from doppel.sources.telegram import TelegramExport


def test_vectorised_gap_bins_match_add_exactly() -> None:
    rng = random.Random(0)
    pauses = [rng.uniform(-5, 10) for _ in range(500)] + [10 ** rng.uniform(0, 9) for _ in
                                                          range(20_000)]
    for edge in _edges(80).tolist():  # both sides of every bin edge
        pauses += [edge, math.nextafter(edge, 0), math.nextafter(edge, math.inf)]
    pauses += [float("nan"), 1.0, 0.0, 1e300]
    one, many = GapHistogram(), GapHistogram()
    for pause in pauses:
        one.add(pause)
    many.add_many(np.array(pauses))
    assert many.counts == one.counts and sum(one.counts) == len(pauses)


def test_plan_matches_segmenter_and_join() -> None:
    """Random chats with bursts, long pauses and calls: the same conversations and monologues."""
    rng = random.Random(1)
    pause, speaker, runs, expected = [], [], [], []
    for chat in range(30):
        runs.append((len(pause), chat % 7))  # chats seen again: new runs of the same chat
        segmenter, segments, t, last = Segmenter(chat, 1200.0), [], 0.0, None
        for index in range(rng.randint(1, 60)):
            hard = index and rng.random() < 0.05
            if hard:
                segments.append(segmenter.boundary())
            t += rng.choice([5.0, 60.0, 900.0, 1300.0, 4000.0, 90_000.0])
            who = rng.choice("ab") if rng.random() < 0.7 else "a"
            segments.append(segmenter.add((who, t, "x")))
            pause.append(math.nan if last is None or hard else t - last)
            speaker.append(ord(who))
            last = t
        segments.append(segmenter.finish())
        expected += [(len(rows), lone_speaker(rows) is not None) for rows in
                     join_segments([s for s in segments if s is not None], 3600.0)]
    plan = plan_conversations(np.array(pause), np.array(speaker, dtype=np.int32), runs, 3600.0)
    sizes = (plan.stop - plan.start).tolist()
    assert list(zip(sizes, plan.alone.tolist(), strict=True)) == expected
    assert plan.chat.tolist()[0] == 0 and set(plan.chat.tolist()) == set(range(7))


def test_encoded_batch_splits_into_each_message() -> None:
    rows = [{"speaker_id": "user1", "speaker": 'A "quoted"', "time": 1.5, "text": "x"},
            {"speaker_id": "user2", "speaker": "B", "time": 2.0, "text": ',{"speaker_id":"u"}'},
            {"speaker_id": "user1", "speaker": "A", "time": 3.0, "text": "half \ud83d emoji"}]
    for count in (1, 3):
        body, sizes = encode(rows[:count])
        pieces = np.split(np.frombuffer(body, dtype=np.uint8), np.cumsum(sizes)[:-1])
        decoded = [orjson.loads(piece.tobytes()[:-1]) for piece in pieces]
        assert [d["time"] for d in decoded] == [r["time"] for r in rows[:count]]
    assert decoded[2]["text"] == "half \ufffd emoji" and decoded[1]["text"] == rows[1]["text"]


def test_runs_orjson_refuses_read_item_by_item(tmp_path: Path, monkeypatch) -> None:
    """Indented (runs through orjson) and minified (the json scanner) give the same messages,
    including a lone surrogate and a raw control character that orjson refuses mid-run."""
    messages = [{"id": i, "type": "message", "date_unixtime": str(1_700_000_000 + i),
                 "from": "Sam", "from_id": "user42", "text": f"message {i}"} for i in range(20_000)]
    export = {"name": "Sam", "type": "personal_chat", "id": 42, "messages": messages}
    indented = json.dumps(export, ensure_ascii=False, indent=1)
    indented = indented.replace('"message 9000"', '"lone \\ud83d"').replace(
        '"message 15000"', '"raw \t tab"')
    (tmp_path / "a.json").write_text(indented, encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps(json.loads(indented, strict=False)))
    runs = []
    run = jsonstream.JsonStream._run
    monkeypatch.setattr(jsonstream.JsonStream, "_run",
                        lambda self, close: runs.append(run(self, close)) or runs[-1])

    def read(name: str) -> list[tuple]:
        return [(m.id, m.time, m.text) for m in TelegramExport(tmp_path / name).messages()]

    fast = read("a.json")
    decoded = sum(len(items) for items in runs if items)
    assert 10_000 < decoded < 20_000 and None in runs  # orjson took most, and refused some
    runs.clear()
    assert fast == read("b.json") and len(fast) == 20_000 and not runs
    assert fast[9000][2] == "lone \ud83d" and fast[15000][2] == "raw \t tab"
