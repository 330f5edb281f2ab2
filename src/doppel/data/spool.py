"""Kept messages between the read and the write: their final JSON on disk, a few numbers in memory.

Conversations can be cut only once the whole export has been read (the automatic gap comes from
every pause in it). So each kept message is encoded once, exactly as conversations.jsonl will hold
it, into a temporary file, and memory keeps per message only what cutting, splitting and counting
need: the pause before it, its speaker's number, its text length's bin and its size in the file
(about 20 bytes: 40 MB for 2M messages). The per-message work while reading is one tuple; the rest
is done a batch at a time with numpy, and writing a conversation is one read of its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, BinaryIO

import numpy as np
import orjson

from doppel.data.dataset import repair_surrogates
from doppel.data.gaps import GapHistogram

BATCH = 8192  # messages encoded and written at a time
_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)


# what starts every message after the first in an encoded batch: JSON strings escape their
# quotes, so these bytes occur nowhere else
_NEXT = b',{"speaker_id":'


def encode(rows: list[dict[str, Any]]) -> tuple[bytes, Any]:
    """Messages as conversations.jsonl holds them, each followed by a comma, and each one's size.

    One orjson call for the batch (a lone surrogate, which orjson refuses, is repaired first).
    """
    try:
        blob = orjson.dumps(rows)
    except orjson.JSONEncodeError:
        blob = orjson.dumps([repair_surrogates(row) for row in rows])
    body = blob[1:-1] + b","
    sizes = np.fromiter(map(len, body.split(_NEXT)), dtype=np.int64, count=len(rows))
    sizes[1:] += len(_NEXT) - 1  # a piece after the first lost its opening `{"speaker_id":`
    sizes[:-1] += 1  # and every piece but the last lost the comma after it
    return body, sizes


@dataclass(slots=True)
class Columns:
    """Per kept message, in file order: `pause` before it (NaN: a conversation must start here:
    a new chat run, or after a call), `speaker` number, `bits` (bit length of the text length),
    `end` (where its JSON ends in the spool file, a comma after each). `runs` holds the first
    message and the chat index of each chat run."""

    pause: Any
    speaker: Any
    bits: Any
    end: Any
    runs: list[tuple[int, int]]


class Spool:
    """Collects one chat run at a time; `add` rows (speaker number, time, text) to `rows`."""

    def __init__(self, out: BinaryIO, cut_gaps: GapHistogram) -> None:
        self.out = out
        self.gaps = cut_gaps
        self.sids: list[str] = []  # speaker number -> id
        self.names: list[str] = []  # speaker number -> name as first seen (made unique later)
        self.first = np.zeros(0)  # speaker number -> their earliest message's time (labels)
        self.rows: list[tuple[int, float, str]] = []
        self.hard: list[int] = []  # indexes into rows that follow a call or a history clear
        self.count = 0  # messages spooled
        self.runs: list[tuple[int, int]] = []
        self._last_time: float | None = None  # the run's previous message time
        self._parts: dict[str, list[Any]] = {"pause": [], "speaker": [], "bits": [], "size": []}

    def start_run(self, chat: int) -> None:
        """A new chat run: its first message starts a conversation and has no pause."""
        self.flush()
        self._last_time = None
        self.runs.append((self.count, chat))

    def boundary(self) -> None:
        self.hard.append(len(self.rows))

    def flush(self) -> None:
        """Encode and write the pending rows; add their pauses to the histogram."""
        rows = self.rows
        if not rows:
            self.hard.clear()
            return
        sids, names, n = self.sids, self.names, len(rows)
        body, sizes = encode([{"speaker_id": sids[c], "speaker": names[c], "time": t, "text": x}
                              for c, t, x in rows])
        self.out.write(body)
        when = np.fromiter(map(_SECOND, rows), dtype=np.float64, count=n)
        pause = np.empty_like(when)
        pause[1:] = np.diff(when)
        pause[0] = np.nan if self._last_time is None else when[0] - self._last_time
        self.gaps.add_many(pause if self._last_time is not None else pause[1:])
        carry = [i - len(rows) for i in self.hard if i >= len(rows)]  # a call after the last row
        pause[[i for i in self.hard if i < len(rows)]] = np.nan
        if self._last_time is None:
            pause[0] = np.nan
        parts = self._parts
        parts["pause"].append(pause)
        codes = np.fromiter(map(_FIRST, rows), dtype=np.int32, count=n)
        parts["speaker"].append(codes)
        if len(self.first) < len(sids):
            self.first = np.concatenate((self.first, np.full(len(sids) - len(self.first), np.inf)))
        np.fmin.at(self.first, codes, when)
        lengths = np.fromiter(map(len, map(_THIRD, rows)), dtype=np.int64, count=n)
        parts["bits"].append(np.frexp(lengths)[1].astype(np.int8))  # == int.bit_length
        parts["size"].append(sizes)
        self._last_time = rows[-1][1]
        self.count += n
        self.rows, self.hard = [], carry

    def columns(self) -> Columns:
        """Everything spooled, as arrays (call after the last flush)."""
        self.flush()
        kinds = {"pause": np.float64, "speaker": np.int32, "bits": np.int8, "size": np.int64}
        joined = {key: np.concatenate(parts) if parts else np.zeros(0, dtype=kinds[key])
                  for key, parts in self._parts.items()}
        self._parts.clear()
        return Columns(joined["pause"], joined["speaker"], joined["bits"],
                       np.cumsum(joined["size"], dtype=np.int64), self.runs)
