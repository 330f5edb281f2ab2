"""From an export to a dataset folder in one read: select, clean, mask, cut, split, write, report.

Reading (pass over the export): chat by chat, each kept message is cleaned and masked, counted,
and its pause recorded in a fixed-size histogram; messages go to a temporary segments file
cut at the shortest possible session gap (see conversations.py). After the read the gap is
chosen, "me" is resolved, names made unique, and the segments file is replayed one chat at a
time into conversations.jsonl. Memory holds one segment or one conversation of messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from doppel.atomic import atomic_dir
from doppel.chatformat import IM_END, IM_START, MESSAGE_SEP
from doppel.data.conversations import (
    ChatOutline,
    Row,
    Segment,
    Segmenter,
    join_segments,
    split_of,
)
from doppel.data.dataset import DatasetWriter
from doppel.data.gaps import GapChoice, GapHistogram
from doppel.data.masking import Masker
from doppel.data.options import AUTO_GAP_MIN_S, PrepareOptions
from doppel.data.selection import no_chats_error, skip_reason, unmatched_includes
from doppel.data.speakers import clean_name, resolve_me, unique_names
from doppel.errors import DoppelError
from doppel.sources.records import Chat, Message

SEGMENTS = ".segments.pickle"  # temporary, inside the atomic temp folder; our own data only
BATCH_ROWS = 8192  # messages per pickled batch of segments: bounds memory, amortises pickling
PROGRESS_EVERY = 4096  # messages between progress-bar updates
FINGERPRINT_CHUNK = 1 << 20
MONOLOGUE = "single_speaker_conversation"


@dataclass(slots=True)
class ChatStats:
    """What happened to one chat, for the manifest."""

    chat: Chat
    skipped: str | None
    read: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    conversations: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    monologues: int = 0
    outline: ChatOutline = field(default_factory=ChatOutline)
    plan: list[bool] | None = None  # per conversation: only one speaker? (from the outline)
    written: int = 0  # conversations written or dropped so far (an index into plan)

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.chat.id, "name": self.chat.name, "type": self.chat.type,
                               "kept": self.skipped is None, "messages_read": self.read}
        if self.skipped:
            row["skip_reason"] = self.skipped
            return row
        row.update(dropped=dict(self.dropped), conversations=dict(self.conversations),
                   messages=dict(self.messages), single_speaker_conversations=self.monologues)
        return row


@dataclass(slots=True)
class PrepareSummary:
    """What `prepare_dataset` did, for the CLI's table and for callers (demo, bench)."""

    out_dir: Path
    me: dict[str, str]
    chats_kept: int
    chats_skipped: dict[str, int]
    conversations: dict[str, int]
    messages: dict[str, int]
    speakers: int
    messages_read: int
    dropped: dict[str, int]
    masked: dict[str, int]
    gap_seconds: float
    gap_reason: str
    seconds: float
    warnings: list[str] = field(default_factory=list)


class _Collector:
    """The reading pass: chat selection, cleaning, masking, counting, segmenting."""

    def __init__(self, options: PrepareOptions, segments: Any) -> None:
        self.options = options
        self.masker = Masker(urls=options.mask_urls) if options.mask else None
        self.cut_s = options.gap_seconds or AUTO_GAP_MIN_S
        self.markers = options.media == "markers"
        self.out = segments
        self.gaps = GapHistogram()
        self.names: dict[str, str] = {}
        self.counts: Counter[str] = Counter()  # speaker id -> kept messages
        self.chats: list[ChatStats] = []
        self.boundaries = 0
        self._index: dict[str, int] = {}
        self._chat: ChatStats | None = None
        self._segmenter: Segmenter | None = None
        self._batch: list[tuple[int, float | None, list[Row]]] = []
        self._batch_rows = 0

    def feed(self, message: Message) -> None:
        chat = self._chat
        if chat is None or message.chat.id != chat.chat.id:
            chat = self._switch(message.chat)
        if message.kind == "boundary":
            self.boundaries += 1
            if chat.skipped is None:
                self._write(self._segmenter.boundary())
            return
        chat.read += 1
        if chat.skipped is not None:
            return
        if message.drop is not None:
            chat.dropped[message.drop] += 1
            return
        text = self._text(message, chat)
        if text is None:
            return
        speaker_id = message.speaker_id
        if speaker_id not in self.names:
            self.names[speaker_id] = clean_name(message.speaker, speaker_id)
        self.counts[speaker_id] += 1
        chat.kept += 1
        closed = self._segmenter.add((speaker_id, message.time, text))
        if closed is not None:
            self._write(closed)

    def _text(self, message: Message, chat: ChatStats) -> str | None:
        """The message's text with media and masking applied, or None (counted) to drop it."""
        text = message.text.strip()
        media = message.media
        if media:
            if not media.startswith("[") or self.markers:  # a sticker's emoji, or a marker
                text = f"{media} {text}" if text else media
            elif not text:
                chat.dropped["media"] += 1
                return None
        if not text:
            chat.dropped["empty"] += 1
            return None
        if message.speaker_id is None:
            chat.dropped["no_speaker"] += 1
            return None
        if self.masker is not None:
            text = self.masker.mask(text, message.pii)
        if "<|" in text or MESSAGE_SEP in text:
            text = defuse(text)
        return text

    def _switch(self, chat: Chat) -> ChatStats:
        self.finish()
        index = self._index.get(chat.id)
        if index is None:  # a chat seen again continues its stats, with a new conversation
            index = self._index[chat.id] = len(self.chats)
            self.chats.append(ChatStats(chat, skip_reason(chat, self.options)))
        self._chat = self.chats[index]
        self._segmenter = Segmenter(index, self.cut_s, self.gaps)
        return self._chat

    def finish(self) -> None:
        if self._segmenter is not None:
            self._write(self._segmenter.finish())
            self._segmenter = None

    def _write(self, segment: Segment | None) -> None:
        if segment is not None:
            self.chats[segment.chat].outline.add(segment)
            self._batch.append((segment.chat, segment.gap, segment.rows))
            self._batch_rows += len(segment.rows)
            if self._batch_rows >= BATCH_ROWS:
                self.flush()

    def flush(self) -> None:
        """Write the pending segments as one pickle (much faster than a JSON line each)."""
        if self._batch:
            pickle.dump(self._batch, self.out, protocol=pickle.HIGHEST_PROTOCOL)
            self._batch, self._batch_rows = [], 0


def defuse(text: str) -> str:
    """Keep a message from forging chat-format structure: no chat tokens, no message separator."""
    text = text.replace(IM_START, "").replace(IM_END, "")
    return text.replace(MESSAGE_SEP, MESSAGE_SEP.replace(">>>", ">"))


def _read_segments(path: Path) -> Iterator[Segment]:
    with open(path, "rb") as batches:
        while True:
            try:
                batch = pickle.load(batches)
            except EOFError:
                return
            for chat, gap, rows in batch:
                yield Segment(chat, gap, rows)


class _Assembler:
    """The replay: segments -> conversations -> conversations.jsonl, with the final counts."""

    def __init__(self, collector: _Collector, names: dict[str, str], gap_s: float,
                 options: PrepareOptions, writer: DatasetWriter) -> None:
        self.chats = collector.chats
        self.names = names
        self.gap_s = gap_s
        self.options = options
        self.writer = writer
        self.speaker_messages: Counter[str] = Counter()
        self.speaker_chats: dict[str, set[str]] = {}
        self.sizes: Counter[int] = Counter()  # messages per conversation -> conversations
        self.lengths: Counter[int] = Counter()  # bit_length of the text length -> messages

    def run(self, segments: Path) -> None:
        for index, chat_segments in groupby(_read_segments(segments), key=lambda s: s.chat):
            self._chat(self.chats[index], join_segments(chat_segments, self.gap_s))

    def _chat(self, chat: ChatStats, conversations: Iterator[list[Row]]) -> None:
        if chat.plan is None:  # a chat's segments may come in several runs: plan once
            chat.plan = chat.outline.monologues(self.gap_s)
            chat.outline = ChatOutline()  # done with it: free the memory
        keep_all = self.options.keep_single_speaker
        total = len(chat.plan) if keep_all else chat.plan.count(False)
        names, write = self.names, self.writer.write_json
        chat_json = {"id": chat.chat.id, "name": chat.chat.name, "type": chat.chat.type}
        for rows in conversations:
            alone = chat.plan[chat.written]
            chat.written += 1
            if alone and not keep_all:
                chat.monologues += 1
                chat.dropped[MONOLOGUE] += len(rows)
                continue
            number = chat.conversations.total()
            split = split_of(number, total, self.options.val_fraction)
            # Conversation.to_json's shape, built directly: this runs once per message
            write({"id": f"{chat.chat.id}-{number:04d}", "chat": chat_json, "split": split,
                   "messages": [{"speaker_id": sid, "speaker": names[sid], "time": t, "text": text}
                                for sid, t, text in rows]})
            chat.conversations[split] += 1
            chat.messages[split] += len(rows)
            self.sizes[len(rows)] += 1
            speakers = [row[0] for row in rows]
            self.speaker_messages.update(speakers)
            self.lengths.update(map(int.bit_length, map(len, [row[2] for row in rows])))
            for sid in set(speakers):
                self.speaker_chats.setdefault(sid, set()).add(chat.chat.id)

    def speakers_json(self) -> dict[str, dict[str, Any]]:
        return {sid: {"name": self.names[sid], "messages": n,
                      "chats": sorted(self.speaker_chats[sid])}
                for sid, n in self.speaker_messages.most_common()}


def fingerprint(path: Path) -> str:
    """sha256 of the file's size, first MiB and last MiB: content-based, and instant on 2 GB."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_CHUNK))
        if size > FINGERPRINT_CHUNK:
            handle.seek(max(FINGERPRINT_CHUNK, size - FINGERPRINT_CHUNK))
            digest.update(handle.read(FINGERPRINT_CHUNK))
    return "sha256:" + digest.hexdigest()


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Any]:
    """A rich progress bar over the export's bytes, or a do-nothing stand-in."""
    if not enabled:
        yield lambda done: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("reading export"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False, refresh_per_second=2) as bar:
        task = bar.add_task("read", total=total or None)
        yield lambda done: bar.update(task, completed=done)
        bar.update(task, completed=total)


def _read(export: Any, collector: _Collector, progress: bool) -> int:
    """The single pass over the export; returns how many records were read."""
    read = 0
    with _progress_bar(progress, int(getattr(export, "size_bytes", 0) or 0)) as update:
        for message in export.messages():
            collector.feed(message)
            read += 1
            if read % PROGRESS_EVERY == 0:
                update(export.bytes_read)
    collector.finish()
    return read


def _me(options: PrepareOptions, export: Any, collector: _Collector) -> str:
    owner = getattr(export, "owner", None)
    me = resolve_me(options.me, owner, collector.names, collector.counts)
    if collector.counts[me] == 0:
        name = collector.names.get(me) or (owner[1] if owner else me)
        raise DoppelError(f"no messages from you ({name}, {me}) in the selected chats; check "
                          "--me, or widen the selection with --groups or --include CHAT")
    return me


def _check_selection(collector: _Collector) -> None:
    kept = [c for c in collector.chats if c.skipped is None]
    if not kept:
        skipped = Counter(c.skipped for c in collector.chats if c.skipped)
        raise no_chats_error(skipped, len(collector.chats))


def prepare_dataset(export_path: Path, out_dir: Path, options: PrepareOptions,
                    progress: bool = True) -> PrepareSummary:
    """Read the export once and write the dataset folder (atomically) with its report."""
    from doppel.sources import open_export

    export_path = Path(export_path)  # a missing or foreign file: the reader says so
    return prepare_from(open_export(export_path), export_path, out_dir, options, progress)


def prepare_from(export: Any, export_path: Path, out_dir: Path, options: PrepareOptions,
                 progress: bool = True) -> PrepareSummary:
    """prepare_dataset for any opened reader (messages(), owner, layout, size_bytes, bytes_read)."""
    from doppel.data.report import write_report

    started = time.perf_counter()
    export_path, out_dir = Path(export_path), Path(out_dir)
    with atomic_dir(out_dir, force=options.force) as folder:
        with open(folder / SEGMENTS, "wb") as segments:
            collector = _Collector(options, segments)
            read = _read(export, collector, progress)
            collector.flush()
        _check_selection(collector)
        me = _me(options, export, collector)
        order = [me, *(sid for sid, _ in collector.counts.most_common() if sid != me)]
        names = unique_names(collector.names, order)
        choice = (GapChoice(options.gap_seconds, f"fixed by --gap {options.gap}")
                  if options.gap_seconds else collector.gaps.choose())
        writer = DatasetWriter(folder)
        assembler = _Assembler(collector, names, choice.seconds, options, writer)
        try:
            assembler.run(folder / SEGMENTS)
        finally:
            writer.close()
        (folder / SEGMENTS).unlink()
        if assembler.speaker_messages[me] == 0:
            raise DoppelError(f"none of your messages ({names[me]}) is in a conversation with a "
                              "reply; check --me, or pass --keep-single-speaker")
        manifest = _manifest(export, export_path, options, collector, assembler, me, choice, read)
        writer.finish(manifest)
        write_report(folder, manifest)
    return _summary(out_dir, manifest, time.perf_counter() - started)


def _counts(collector: _Collector, assembler: _Assembler, read: int) -> dict[str, Any]:
    kept_chats = [c for c in collector.chats if c.skipped is None]
    dropped: Counter[str] = Counter()
    for chat in kept_chats:
        dropped.update(chat.dropped)
    conversations: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for chat in kept_chats:
        conversations.update(chat.conversations)
        messages.update(chat.messages)
    return {
        "records_read": read,
        "boundaries": collector.boundaries,
        "messages_read": sum(c.read for c in collector.chats),
        "messages_in_skipped_chats": sum(c.read for c in collector.chats if c.skipped),
        "messages_kept": sum(messages.values()),
        "dropped": dict(dropped.most_common()),
        "chats_kept": len(kept_chats),
        "chats_skipped": dict(Counter(c.skipped for c in collector.chats if c.skipped)),
        "single_speaker_conversations": sum(c.monologues for c in kept_chats),
        "conversations": {"train": conversations["train"], "val": conversations["val"]},
        "messages": {"train": messages["train"], "val": messages["val"]},
        "masked": ({kind: collector.masker.counts[kind] for kind in collector.masker.kinds}
                   if collector.masker else {}),
    }


def _manifest(export: Any, export_path: Path, options: PrepareOptions, collector: _Collector,
              assembler: _Assembler, me: str, choice: GapChoice, read: int) -> dict[str, Any]:
    source = Path(getattr(export, "path", export_path))
    file = source / "result.json" if source.is_dir() else source
    warnings = [f"--include {name!r} matched no chat"
                for name in unmatched_includes([c.chat for c in collector.chats], options)]
    return {
        "me": {"id": me, "name": assembler.names[me]},
        "speakers": assembler.speakers_json(),
        "fingerprint": fingerprint(file),
        "fingerprint_method": "sha256(size + first MiB + last MiB)",
        "export": {"path": str(file.resolve()), "reader": type(export).__name__,
                   "layout": getattr(export, "layout", None), "size_bytes": file.stat().st_size,
                   "owner": list(getattr(export, "owner", None) or []) or None,
                   "unknown": dict(getattr(export, "unknown", None) or {})},
        "params": {**options.to_json(), "gap_seconds": choice.seconds, "gap_reason": choice.reason},
        "counts": _counts(collector, assembler, read),
        "chats": [c.to_json() for c in collector.chats],
        "stats": {"gap_histogram": collector.gaps.counts,
                  "length_bit_bins": {str(k): v for k, v in sorted(assembler.lengths.items())},
                  "conversation_sizes": {str(k): v for k, v in sorted(assembler.sizes.items())}},
        "warnings": warnings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _summary(out_dir: Path, manifest: dict[str, Any], seconds: float) -> PrepareSummary:
    counts = manifest["counts"]
    return PrepareSummary(
        out_dir=out_dir, me=manifest["me"], chats_kept=counts["chats_kept"],
        chats_skipped=counts["chats_skipped"], conversations=counts["conversations"],
        messages=counts["messages"], speakers=len(manifest["speakers"]),
        messages_read=counts["messages_read"], dropped=counts["dropped"],
        masked=counts["masked"], gap_seconds=manifest["params"]["gap_seconds"],
        gap_reason=manifest["params"]["gap_reason"], seconds=seconds,
        warnings=manifest["warnings"])
