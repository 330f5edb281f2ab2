"""What a reader read and what became of it, so nothing is lost without a count.

Every line of a text export goes into a message (the line that starts it), is joined to one (a
continuation), only carries the layout (a header, a date line, a blank separator), or is
skipped with a reason; every row or record of a structured export is read into a message, is
layout (a member list entry, a header) or is skipped with a reason. A reader owns one Tally,
reset at the start of each `messages()` pass; prepare sums the skipped counts per source into
the manifest and the dataset report (data/pipeline.py) and prints one line when any were.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    """Counts for one pass over an export; `read` = `started` + `continued` + `layout` +
    the skipped total, once the pass is done."""

    read: int = 0  # lines (text exports) or records (structured ones) seen
    started: int = 0  # lines or records that became a message
    continued: int = 0  # lines joined to the message before them
    layout: int = 0  # lines or records that only describe the export
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> lines or records

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    def follow(self, line: str, more: list[str] | None, limit: int) -> None:
        """A line that starts no message: joined to the open one (`more`, its lines so far) while
        it has room, else skipped with the reason; a blank line outside any message is layout."""
        if more is not None and len(more) < limit:
            more.append(line)
            self.continued += 1
        elif more is not None:
            self.skip("line beyond a message's size")
        elif line.strip():
            self.skip("line outside any message")
        else:
            self.layout += 1

    @property
    def accounted(self) -> int:
        return self.started + self.continued + self.layout + sum(self.skipped.values())


def skipped_of(reader: object) -> dict[str, int]:
    """A reader's skipped counts (a reader without a tally skipped nothing it knows of)."""
    tally = getattr(reader, "tally", None)
    return dict(tally.skipped) if isinstance(tally, Tally) else {}
