"""Cutting a chat into conversations (time gaps, calls, history clears) and the train/val split.

Done in two steps so the export is read once even when the gap is picked from the data:
while reading, each chat is cut into *segments* at the shortest gap the automatic choice could
pick (or at the fixed gap) and at boundaries; once the gap is known, consecutive segments whose
pause is within it are joined again. Only one segment (while reading) or one chat's
conversations (while joining) is ever held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

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


def join_segments(segments: Iterable[Segment], gap_s: float) -> list[list[Row]]:
    """Join one chat's segments into conversations: a pause over `gap_s` or a boundary splits."""
    conversations: list[list[Row]] = []
    for segment in segments:
        if conversations and segment.gap is not None and segment.gap <= gap_s:
            conversations[-1].extend(segment.rows)
        else:
            conversations.append(list(segment.rows))
    return conversations


def speaker_count(conversation: list[Row]) -> int:
    first = conversation[0][0]
    for row in conversation:
        if row[0] != first:
            return 2
    return 1


def validation_count(conversations: int, fraction: float) -> int:
    """How many of a chat's latest conversations go to val: ~fraction, at least 1 from 5 up."""
    if fraction <= 0 or conversations < 2:
        return 0
    count = int(conversations * fraction + 0.5)
    if conversations >= 5:
        count = max(count, 1)
    return min(count, conversations - 1)


def assign_splits(
    conversations: list[list[Row]], fraction: float
) -> Iterator[tuple[str, list[Row]]]:
    """Yield (split, conversation) in time order; the latest are val (never train on the future)."""
    ordered = sorted(conversations, key=lambda c: c[0][1])
    first_val = len(ordered) - validation_count(len(ordered), fraction)
    for index, conversation in enumerate(ordered):
        yield ("val" if index >= first_val else "train"), conversation
