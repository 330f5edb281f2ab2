"""What the owner told doppel to forget (`doppel memory forget`): DATASET/forgotten.jsonl.

The record holds no text: per forgotten stretch group, its chat id (and title, for display),
conversation id, the time spans of the forgotten stretches, the memory units' keys and a SHA-256
of their text. Every reader of the dataset goes through `Dataset.conversations()`, which leaves
out each message a span covers (a message is its chat and its time, both stable across exports),
so the memory index, training, eval and the blind test never see a forgotten message again, and
neither `doppel memory build` nor a `doppel prepare --force` from a newer export brings it back.
"""

from __future__ import annotations

import bisect
import hashlib
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from doppel.atomic import atomic_file
from doppel.errors import DoppelError

FORGOTTEN = "forgotten.jsonl"  # inside the dataset folder, beside conversations.jsonl


@dataclass(frozen=True)
class Forgotten:
    """A dataset's forget record, read once: merged spans per chat, and the units' keys (the
    bot's own units, which no conversation holds, are known by key alone)."""

    records: tuple[dict[str, Any], ...] = ()
    spans: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    units: frozenset[str] = frozenset()
    digest: str = ""  # SHA-256 of the file: an index built from this record records it

    def __bool__(self) -> bool:
        return bool(self.records)

    def hides(self, chat_id: str, time: float) -> bool:
        """Whether the message of chat `chat_id` at `time` was forgotten."""
        spans = self.spans.get(chat_id)
        if spans is None:
            return False
        starts, ends = spans
        at = bisect.bisect_right(starts, time) - 1
        return at >= 0 and time <= ends[at]

    def overlaps(self, chat_id: str, start: float, end: float) -> bool:
        """Whether any forgotten span of chat `chat_id` meets the time range [start, end] (a
        stretch of an index cut otherwise, that holds a forgotten message inside)."""
        spans = self.spans.get(chat_id)
        if spans is None:
            return False
        starts, ends = spans
        at = bisect.bisect_right(starts, end) - 1  # the last span begun by `end`
        return at >= 0 and ends[at] >= start

    def strip(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """A conversations.jsonl row without its forgotten messages; None when none is left."""
        chat_id = row["chat"]["id"]
        if chat_id not in self.spans:
            return row
        kept = [m for m in row["messages"] if not self.hides(chat_id, m["time"])]
        if len(kept) == len(row["messages"]):
            return row
        return {**row, "messages": kept} if kept else None


def read_forgotten(folder: Path) -> Forgotten:
    """DATASET/forgotten.jsonl, or an empty record; a damaged file is one DoppelError line
    (never silently nothing forgotten)."""
    path = Path(folder) / FORGOTTEN
    if not path.is_file():
        return Forgotten()
    data = path.read_bytes()
    try:
        records = tuple(_checked(orjson.loads(line)) for line in data.splitlines()
                        if line.strip())
    except (orjson.JSONDecodeError, ValueError) as error:
        raise DoppelError(f"{path} is not a readable forget record ({error}); restore it from "
                          "a backup (deleting it brings the forgotten stretches back)") from None
    by_chat: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        by_chat.setdefault(record["chat_id"], []).extend(
            (float(start), float(end)) for start, end in record["spans"])
    units = frozenset(key for record in records for key in record["units"])
    return Forgotten(records, {chat: _merged(spans) for chat, spans in by_chat.items()}, units,
                     hashlib.sha256(data).hexdigest())


_TEXT_FIELDS = ("forgotten_at", "how", "chat_id", "chat", "conversation", "text_sha256")


def _checked(record: Any) -> dict[str, Any]:
    """A record as records_of writes it, or ValueError: a hand-edited or damaged line must not
    half-apply (a chat id read as "None", a key read letter by letter) nor break `--list`."""
    if not isinstance(record, dict):
        raise ValueError(f"a line is {type(record).__name__}, not a record")
    for name in _TEXT_FIELDS:
        if not isinstance(record.get(name), str):
            raise ValueError(f"a record's {name!r} is missing or not text")
    spans, units = record.get("spans"), record.get("units")
    if not isinstance(units, list) or not all(isinstance(key, str) for key in units):
        raise ValueError("a record's 'units' is not a list of keys")
    if not isinstance(spans, list) or not spans or not all(
            isinstance(span, list) and len(span) == 2
            and all(isinstance(t, int | float) and not isinstance(t, bool) for t in span)
            and span[0] <= span[1] for span in spans):
        raise ValueError("a record's 'spans' is not a list of [start, end] times")
    return record


def _merged(spans: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Sorted, non-overlapping spans as two lists (starts, ends), for bisect."""
    starts: list[float] = []
    ends: list[float] = []
    for start, end in sorted(spans):
        if starts and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


@dataclass(frozen=True)
class Stretch:
    """One memory unit chosen to be forgotten: where and when, its key and its text (the text
    only to hash it; it is never written)."""

    key: str
    conversation_id: str
    chat_id: str
    chat_name: str
    start: float
    end: float
    text: str


def records_of(stretches: Iterable[Stretch], how: str) -> list[dict[str, Any]]:
    """One record per conversation: its spans, units' keys and the hash of their text."""
    by_conversation: dict[str, list[Stretch]] = {}
    for stretch in stretches:
        by_conversation.setdefault(stretch.conversation_id, []).append(stretch)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for conversation, group in by_conversation.items():
        group.sort(key=lambda s: (s.start, s.end))
        starts, ends = _merged([(s.start, s.end) for s in group])
        digest = hashlib.sha256("\n\n".join(s.text for s in group).encode()).hexdigest()
        out.append({"forgotten_at": now, "how": how, "chat_id": group[0].chat_id,
                    "chat": group[0].chat_name, "conversation": conversation,
                    "spans": [list(span) for span in zip(starts, ends, strict=True)],
                    "units": [s.key for s in group], "text_sha256": digest})
    return out


def append_forgotten(folder: Path, records: list[dict[str, Any]]) -> Path:
    """Add records to DATASET/forgotten.jsonl (the whole file rewritten to a temporary name and
    renamed: a crash leaves the old record whole)."""
    path = Path(folder) / FORGOTTEN
    old = path.read_bytes() if path.is_file() else b""
    with atomic_file(path, "wb") as out:
        out.write(old)
        for record in records:
            out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    path.chmod(0o600)
    return path


def carry_forgotten(old_folder: Path, new_folder: Path) -> None:
    """A dataset being replaced (`prepare --force`) hands its forget record to the new one."""
    source = Path(old_folder) / FORGOTTEN
    if source.is_file():
        shutil.copyfile(source, Path(new_folder) / FORGOTTEN)
        (Path(new_folder) / FORGOTTEN).chmod(0o600)


def parse_day(text: str) -> float:
    """`--before`'s date (2024-03-01, or a time 2024-03-01T18:00), UTC, as epoch seconds."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date; use YYYY-MM-DD, e.g. 2024-03-01") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def day(seconds: float) -> str:
    """A time as the date people read (UTC, as `memory search` shows it)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def listed(records: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str, str, int, str, str]]:
    """What `--list` shows, never the text: (forgotten on, "chat [chat id]", how, stretches,
    first day, last day), one row per forget and chat."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["forgotten_at"], record["chat_id"], record["how"]),
                          []).append(record)
    for (when, chat_id, how), group in groups.items():
        spans = [span for record in group for span in record["spans"]]
        yield (when[:10], f"{group[0]['chat']} [{chat_id}]", how,
               sum(len(record["units"]) for record in group),
               day(min(s for s, _ in spans)), day(max(e for _, e in spans)))
