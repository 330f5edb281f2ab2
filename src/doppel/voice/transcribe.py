"""The transcription pass: every kept voice message's audio, heard once, before prepare's read.

The pass reads each export's messages (a cheap read next to the listening), finds the voice
messages that prepare will keep, hashes their audio, takes what the cache already knows and
transcribes the rest with a progress bar. Prepare's read then swaps each voice marker for its
words (`Transcripts.words`). A voice message whose audio is missing, does not decode, or holds no
speech keeps its marker and is counted by reason; the run goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from doppel.data.options import PrepareOptions
from doppel.data.selection import skip_reason
from doppel.sources.records import Message
from doppel.voice.cache import TranscriptCache
from doppel.voice.media import MediaFiles
from doppel.voice.model import SpeechModel, find_model, load

VOICE = "[voice"  # the marker every reader gives a voice message ("[voice 0:07]", "[voice]")
SAMPLE_RATE = 16_000  # what Whisper hears
# decoded audio kept at most (2 bytes a sample while decoding, 4 as float32: 110 MiB): the file
# limit (media.MAX_BYTES) is on the compressed bytes, and an Opus or FLAC file of silence can
# decode to hours; a voice note is minutes
MAX_AUDIO_SECONDS = 30 * 60


def is_voice(message: Message) -> bool:
    return message.media is not None and message.media.startswith(VOICE)


@dataclass(slots=True)
class VoiceStats:
    """What --transcribe did, for the manifest's counts["voice"] and the report."""

    model: str
    voice_messages: int = 0  # kept voice messages seen (in selected chats, not forwarded)
    transcribed: int = 0  # audio files heard in this run
    from_cache: int = 0  # audio files whose words the cache already had
    failed: Counter[str] = field(default_factory=Counter)  # reason -> voice messages
    audio_seconds: float = 0.0  # of the audio heard in this run
    seconds: float = 0.0  # spent hearing it
    used: int = 0  # messages whose text became their transcript (set by prepare's read)

    def to_json(self) -> dict[str, Any]:
        rate = self.audio_seconds / self.seconds if self.seconds else None
        return {"model": self.model, "voice_messages": self.voice_messages,
                "transcribed_messages": self.used, "transcribed_now": self.transcribed,
                "from_cache": self.from_cache, "failed": dict(self.failed.most_common()),
                "audio_seconds": round(self.audio_seconds, 1), "seconds": round(self.seconds, 1),
                "audio_seconds_per_second": None if rate is None else round(rate, 2)}


@dataclass(slots=True)
class _Job:
    media: MediaFiles
    media_path: str
    sha256: str
    keys: list[tuple[str, str]]


class Transcripts:
    """(chat id, media path) -> the words said; `words(message)` for prepare's read."""

    def __init__(self, stats: VoiceStats) -> None:
        self.texts: dict[tuple[str, str], str] = {}
        self.stats = stats

    def words(self, message: Message) -> str | None:
        if message.media_path is None:
            return None
        return self.texts.get((message.chat.id, message.media_path)) or None


def check_model(options: PrepareOptions) -> SpeechModel | None:
    """The speech model when --transcribe is on (a missing one fails before any reading)."""
    return find_model(options.speech_model) if options.transcribe else None


def transcribe_exports(readers: list[Any], options: PrepareOptions, model: SpeechModel,
                       progress: bool = True) -> Transcripts:
    """Hear every kept voice message of the exports (cached ones are not heard again)."""
    transcripts = Transcripts(VoiceStats(model.name))
    cache = TranscriptCache(model.key)
    medias = [MediaFiles(reader.path) for reader in readers]
    try:
        jobs = _find(readers, medias, options, cache, transcripts)
        if jobs:
            _hear(jobs, model, cache, transcripts, progress)
    finally:
        cache.close()
        for media in medias:
            media.close()
    return transcripts


def _find(readers: list[Any], medias: list[MediaFiles], options: PrepareOptions,
          cache: TranscriptCache, transcripts: Transcripts) -> list[_Job]:
    """The voice messages to hear: the audio read and hashed, cache hits taken at once."""
    stats, texts = transcripts.stats, transcripts.texts
    jobs: dict[str, _Job] = {}  # sha256 -> job: one voice note sent twice is heard once
    for reader, media in zip(readers, medias, strict=True):
        skipped: dict[str, bool] = {}
        for message in reader.messages():
            if message.drop is not None or message.kind != "message" or not is_voice(message):
                continue
            chat = message.chat
            if chat.id not in skipped:
                skipped[chat.id] = skip_reason(chat, options) is not None
            if skipped[chat.id]:
                continue
            stats.voice_messages += 1
            key = (chat.id, message.media_path or "")
            if key in texts:
                continue
            data = media.read(message.media_path) if message.media_path else None
            if data is None:
                stats.failed["no_audio_file"] += 1
                continue
            sha = hashlib.sha256(data).hexdigest()
            if sha in jobs:
                jobs[sha].keys.append(key)
                continue
            known = cache.get(sha)
            if known is not None:
                stats.from_cache += 1
                _keep(transcripts, key, known[0])
                continue
            jobs[sha] = _Job(media, message.media_path or "", sha, [key])
    return list(jobs.values())


def _keep(transcripts: Transcripts, key: tuple[str, str], text: str) -> None:
    if text:
        transcripts.texts[key] = text
    else:
        transcripts.stats.failed["no_speech"] += 1


def _hear(jobs: list[_Job], model: SpeechModel, cache: TranscriptCache,
          transcripts: Transcripts, progress: bool) -> None:
    """Decode and transcribe each job; the model loads at the first audio that decodes."""
    stats, whisper = transcripts.stats, None
    with _progress_bar(progress, len(jobs)) as advance:
        for job in jobs:
            audio, why = _decode(job.media.read(job.media_path) or b"")
            if audio is None:
                stats.failed[why] += len(job.keys)
                advance(0.0)
                continue
            whisper = whisper or load(model)
            started = time.perf_counter()
            text = _listen(whisper, audio)
            stats.seconds += time.perf_counter() - started
            if text is None:
                stats.failed["not_transcribed"] += len(job.keys)
                advance(0.0)
                continue
            seconds = len(audio) / SAMPLE_RATE
            stats.audio_seconds += seconds
            stats.transcribed += 1
            cache.put(job.sha256, text, seconds)
            for key in job.keys:
                _keep(transcripts, key, text)
            advance(seconds)


def _decode(data: bytes) -> tuple[Any, str]:
    """(16 kHz mono float32 samples, "") or (None, why not: "undecodable", "too_long").

    faster_whisper.audio.decode_audio's steps (PyAV, with the FFmpeg its wheel bundles; bad
    frames skipped, timestamps ignored, resampled to s16 mono), stopping once the audio passes
    MAX_AUDIO_SECONDS instead of decoding all of it into memory first."""
    import av
    import numpy as np

    limit, parts, total = MAX_AUDIO_SECONDS * SAMPLE_RATE, [], 0
    try:
        resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono",
                                                      rate=SAMPLE_RATE)
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            for frame in itertools.chain(_frames(container.decode(audio=0)), [None]):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    total += len(samples)
                    if total > limit:
                        return None, "too_long"
                    parts.append(samples)
    except Exception:  # PyAV raises many kinds (FFmpegError, ValueError...): "does not decode"
        return None, "undecodable"
    if not total:
        return None, "undecodable"
    return np.concatenate(parts).astype(np.float32) / 32768.0, ""


def _frames(frames: Iterator[Any]) -> Iterator[Any]:
    """The decodable frames, timestamps dropped (the resampler checks them; a voice note's
    may jump)."""
    import av

    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue
        frame.pts = None
        yield frame


def _listen(whisper: Any, audio: Any) -> str | None:
    """Greedy decoding, each window on its own: a voice note is short, and a window that does
    not lean on the text before it cannot repeat a misheard phrase through the rest. None when
    the engine fails on this audio: one voice note must not stop the run."""
    try:
        segments, _ = whisper.transcribe(audio, beam_size=1, condition_on_previous_text=False)
        return " ".join(segment.text.strip() for segment in segments).strip()
    except (RuntimeError, ValueError) as error:  # CTranslate2 and numpy report as these
        logging.getLogger(__name__).debug("transcription failed: %s", error)
        return None


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Any]:
    """Voice notes heard of those to hear, with the audio so far; rich, or a do-nothing."""
    if not enabled:
        yield lambda seconds: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("transcribing voice messages"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[audio]:.0f} s of audio"), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, transient=False, refresh_per_second=2) as bar:
        task = bar.add_task("voice", total=total, audio=0.0)
        heard = [0.0]

        def advance(seconds: float) -> None:
            heard[0] += seconds
            bar.update(task, advance=1, audio=heard[0])

        yield advance
