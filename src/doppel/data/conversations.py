"""Cutting a chat into conversations (time gaps, calls, history clears) and the train/val split.

The export is read once even when the gap is picked from the data: while reading, each kept
message's pause is recorded (see spool.py), and once the gap is known `plan_conversations` cuts
all chats at once with numpy. Segmenter, join_segments and ChatOutline are the same rules written
message by message: the reference the vectorised cut is tested against.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from doppel.data.gaps import GapHistogram

# a kept message while preparing: (speaker id, epoch seconds, text)
Row = tuple[str, float, str]


@dataclass(slots=True)
class Segment:
    """Consecutive messages of one chat; `gap` is the pause before it (None: a hard boundary)."""

    chat: int
    gap: float | None
    rows: list[Row] = field(default_factory=list)


class Segmenter:
    """Cuts one chat's kept messages into segments at pauses longer than `cut_s` and boundaries.

    Every pause is also recorded in `gaps` (when given), the data for the automatic gap.
    """

    def __init__(self, chat: int, cut_s: float, gaps: GapHistogram | None = None) -> None:
        self.chat = chat
        self.cut_s = cut_s
        self.gaps = gaps
        self.current: Segment | None = None
        self.last_time: float | None = None
        self.after_boundary = False

    def boundary(self) -> Segment | None:
        """A call or history clear: whatever comes next starts a new conversation."""
        self.after_boundary = True
        return self._close()

    def add(self, row: Row) -> Segment | None:
        """Add a message (speaker id, time, text); return the segment it closed, if any."""
        last, self.last_time = self.last_time, row[1]
        gap = None
        if last is not None:
            gap = row[1] - last
            if self.gaps is not None:
                self.gaps.add(gap)
            if gap <= self.cut_s and self.current is not None and not self.after_boundary:
                self.current.rows.append(row)  # the common case, kept short: once per message
                return None
        closed = self._close()
        self.current = Segment(self.chat, None if self.after_boundary else gap, [row])
        self.after_boundary = False
        return closed

    def finish(self) -> Segment | None:
        return self._close()

    def _close(self) -> Segment | None:
        closed, self.current = self.current, None
        return closed


def continues(gap: float | None, gap_s: float) -> bool:
    """Whether a segment after this pause belongs to the conversation before it."""
    return gap is not None and gap <= gap_s


def join_segments(segments: Iterable[Segment], gap_s: float) -> Iterator[list[Row]]:
    """Join one chat's segments into conversations, one at a time (a long chat is never held)."""
    current: list[Row] | None = None
    for segment in segments:
        if current is not None and continues(segment.gap, gap_s):
            current.extend(segment.rows)
        else:
            if current is not None:
                yield current
            current = list(segment.rows)
    if current is not None:
        yield current


def lone_speaker(rows: list[Row]) -> str | None:
    """The only speaker of these messages, or None when there are several."""
    first = rows[0][0]
    for row in rows:  # a plain loop: about twice as fast as all(...) with a generator
        if row[0] != first:
            return None
    return first


@dataclass(slots=True)
class ChatOutline:
    """What joining needs to know before it starts: each segment's pause and lone speaker.

    Sixteen bytes per segment, so the split (the latest conversations of a chat go to val) is
    known before the chat's conversations are written one by one.
    """

    gaps: array = field(default_factory=lambda: array("d"))  # NaN: a boundary before it
    lone: list[str | None] = field(default_factory=list)

    def add(self, segment: Segment) -> None:
        self.gaps.append(math.nan if segment.gap is None else segment.gap)
        self.lone.append(lone_speaker(segment.rows))

    def monologues(self, gap_s: float) -> list[bool]:
        """Per conversation, in order: True when only one person wrote in it."""
        flags: list[bool] = []
        speaker: str | None = None
        for index, (gap, lone) in enumerate(zip(self.gaps, self.lone, strict=True)):
            if index and gap <= gap_s:  # NaN compares False: a boundary always splits
                flags[-1] = flags[-1] and lone is not None and lone == speaker
            else:
                flags.append(lone is not None)
                speaker = lone
        return flags


@dataclass(slots=True)
class Plan:
    """Conversations in file order: message `start`..`stop` (exclusive), `chat` index, and
    whether only one person wrote in it (`alone`)."""

    start: Any
    stop: Any
    chat: Any
    alone: Any


def plan_conversations(pause: Any, speaker: Any, runs: list[tuple[int, int]],
                       gap_s: float) -> Plan:
    """Cut messages into conversations where the pause exceeds `gap_s` or is NaN (a run's first
    message, or one after a call), all chats at once. `pause` and `speaker` are per message in
    file order; `runs` gives each chat run's first message and chat index."""
    import numpy as np

    starts = np.flatnonzero(~(pause <= gap_s))  # NaN compares False: always a start
    stops = np.append(starts[1:], len(pause))
    changes = np.zeros(len(pause) + 1, dtype=np.int64)
    np.cumsum(speaker[1:] != speaker[:-1], out=changes[2:])  # changes[i]: switches before i
    alone = changes[stops] == changes[starts + 1]
    run_first = np.array([first for first, _ in runs], dtype=np.int64)
    run_chat = np.array([chat for _, chat in runs], dtype=np.int64)
    chats = run_chat[np.searchsorted(run_first, starts, side="right") - 1]
    return Plan(starts, stops, chats, alone)


def validation_count(conversations: int, fraction: float) -> int:
    """How many of a chat's latest conversations go to val: ~fraction, at least 1 from 5 up."""
    if fraction <= 0 or conversations < 2:
        return 0
    count = int(conversations * fraction + 0.5)
    if conversations >= 5:
        count = max(count, 1)
    return min(count, conversations - 1)


def split_of(index: int, conversations: int, fraction: float) -> str:
    """The split of a chat's conversation `index` (in time order): the latest are val."""
    first_val = conversations - validation_count(conversations, fraction)
    return "val" if index >= first_val else "train"
