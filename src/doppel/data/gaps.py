"""The session gap: a log-time histogram of the pauses between messages, and the gap it suggests.

Pauses inside a conversation (seconds to minutes) and between conversations (hours to days) form
two humps on a log-time axis; the valley between them is where one conversation ends. The
histogram has fixed bins, so it costs the same memory for a thousand messages or a billion.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from doppel.data.options import AUTO_GAP_MAX_S, AUTO_GAP_MIN_S

BINS_PER_DECADE = 10
DECADES = 8  # 1 s .. 10^8 s (three years); shorter and longer pauses land in the end bins
MIN_GAPS = 30  # below this the histogram says nothing; use FALLBACK_GAP_S
FALLBACK_GAP_S = 2 * 3600.0  # about the log-middle of 20m..12h
_SMOOTH = 2  # moving-average half-width in bins (a fifth of a decade each side)
_WITHIN_MAX_S = AUTO_GAP_MIN_S  # the within-conversation hump lies below this
_BETWEEN_MIN_S = 3 * 3600.0  # the between-conversation hump lies above this (overnight, days)


@dataclass(slots=True)
class GapChoice:
    seconds: float
    reason: str


@dataclass(slots=True)
class GapHistogram:
    """Counts of pauses per log10 bin: bin i covers 10^(i/10) .. 10^((i+1)/10) seconds."""

    counts: list[int] = field(default_factory=lambda: [0] * (BINS_PER_DECADE * DECADES))

    def add(self, seconds: float) -> None:
        index = int(math.log10(seconds) * BINS_PER_DECADE) if seconds > 1.0 else 0
        self.counts[min(index, len(self.counts) - 1)] += 1

    def add_many(self, seconds: Any) -> None:
        """`add` for every pause in a numpy array at once (the same bins, exactly)."""
        import numpy as np

        bins = np.searchsorted(_edges(len(self.counts)), seconds, side="right")
        bins[np.isnan(seconds)] = 0  # as `add`: NaN > 1.0 is false
        for index, count in enumerate(np.bincount(bins, minlength=len(self.counts)).tolist()):
            self.counts[index] += count

    @property
    def total(self) -> int:
        return sum(self.counts)

    @staticmethod
    def edge(index: int) -> float:
        """Lower edge of bin `index` in seconds."""
        return 10 ** (index / BINS_PER_DECADE)

    def center(self, index: int) -> float:
        return 10 ** ((index + 0.5) / BINS_PER_DECADE)

    def _bin(self, seconds: float) -> int:
        return int(math.log10(seconds) * BINS_PER_DECADE)

    def smoothed(self) -> list[float]:
        n = len(self.counts)
        out = []
        for i in range(n):
            window = self.counts[max(0, i - _SMOOTH): i + _SMOOTH + 1]
            out.append(sum(window) / len(window))
        return out

    def choose(self) -> GapChoice:
        """The valley between the two humps, clamped to AUTO_GAP_MIN_S..AUTO_GAP_MAX_S."""
        if self.total < MIN_GAPS:
            return GapChoice(FALLBACK_GAP_S, f"only {self.total} pauses in the data, too few "
                             f"to pick a gap from; using the default "
                             f"{format_duration(FALLBACK_GAP_S)}")
        smooth = self.smoothed()
        split_low, split_high = self._bin(_WITHIN_MAX_S), self._bin(_BETWEEN_MIN_S)
        def height(i: int) -> tuple[float, int]:  # smoothed, then raw: flat tops pick the real peak
            return smooth[i], self.counts[i]

        low = max(range(split_low), key=height)
        high = max(range(split_high, len(smooth)), key=height)
        valley = _middle_of_minimum(smooth, low, high)
        seconds = self.center(valley)
        clamped = min(max(round(seconds / 60) * 60.0, AUTO_GAP_MIN_S), AUTO_GAP_MAX_S)
        reason = (
            f"valley of the log-gap histogram between the within-conversation hump "
            f"(~{format_duration(self.center(low))}) and the between-conversation hump "
            f"(~{format_duration(self.center(high))}) at ~{format_duration(seconds)}"
        )
        if not AUTO_GAP_MIN_S <= seconds <= AUTO_GAP_MAX_S:
            reason += (f", clamped to the {format_duration(AUTO_GAP_MIN_S)}.."
                       f"{format_duration(AUTO_GAP_MAX_S)} range")
        return GapChoice(clamped, reason)


def _bin_of(seconds: float) -> int:
    return int(math.log10(seconds) * BINS_PER_DECADE) if seconds > 1.0 else 0


def _as_int(value: float) -> int:
    return struct.unpack("<q", struct.pack("<d", value))[0]


def _as_float(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<q", bits))[0]


@cache
def _edges(bins: int) -> Any:
    """Per bin i >= 1, the least float that `add` counts in bin i or above, found by bisecting
    the floats themselves (positive floats sort as their bit patterns): searching these edges
    bins exactly as `add` does, without a logarithm per pause."""
    import numpy as np

    edges = []
    for index in range(1, bins):
        low, high = _as_int(1.0), _as_int(10 ** ((index + 1) / BINS_PER_DECADE))
        while high - low > 1:  # _bin_of(low) < index <= _bin_of(high)
            middle = (low + high) // 2
            if _bin_of(_as_float(middle)) >= index:
                high = middle
            else:
                low = middle
        edges.append(_as_float(high))
    return np.array(edges)


def _middle_of_minimum(values: list[float], low: int, high: int) -> int:
    """Index of the lowest value between low and high; the middle of the widest flat bottom."""
    inside = range(low + 1, high) if high - low > 1 else range(low, high + 1)
    bottom = min(values[i] for i in inside)
    runs: list[list[int]] = []
    for i in inside:
        if values[i] == bottom:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
    widest = max(runs, key=len)
    return widest[len(widest) // 2]


def format_duration(seconds: float) -> str:
    """A short human duration: 45s, 20m, 2.5h, 3d."""
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        hours = seconds / 3600
        return f"{hours:.1f}h".replace(".0h", "h")
    return f"{seconds / 86400:.1f}d".replace(".0d", "d")
