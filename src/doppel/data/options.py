"""Every `doppel prepare` option in one place: its default and help feed the CLI and the library."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator

from doppel.errors import DoppelError
from doppel.memory.options import EmbedderOptions
from doppel.options import Options, force_option, option, output_option

# the automatic session gap never leaves this range, whatever the histogram says
AUTO_GAP_MIN_S = 20 * 60.0
AUTO_GAP_MAX_S = 12 * 3600.0

_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_GAP_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


class PrepareOptions(Options):
    """How an export becomes a dataset; validated on construction (bad values raise DoppelError).
    The manifest's "params" are `model_dump(mode="json")` of these."""

    me: tuple[str, ...] = option(
        (), "Who you are: an id (user123 or 123) or your exact display name; repeat it when "
        "your name differs between apps. Default: the export's owner (Telegram full exports, "
        "iMessage, ChatLab files with an ownerId); required for single-chat exports, WhatsApp, "
        "Signal, Discord, LINE, KakaoTalk.")
    identities: Path | None = option(
        None, "A YAML file listing people and their name or id in each app (telegram: user123, "
        "whatsapp: Sam): merges a friend found in several apps into one speaker; `me: true` "
        "marks you.")
    date_order: Literal["auto", "dmy", "mdy", "ymd"] = option(
        "auto", "Date order of WhatsApp exports: 'auto' (inferred from the whole file), or "
        "dmy, mdy, ymd when a file's dates fit both day-first and month-first.")
    groups: bool = option(False, "Also use group chats (personal chats only by default).",
                          flags=("--groups",))
    include: tuple[str, ...] = option(
        (), "Use only these chats (name or id; repeatable). Overrides the chat-type filters.")
    exclude: tuple[str, ...] = option((), "Leave out these chats (name or id; repeatable).")
    media: Literal["markers", "drop"] = option(
        "markers", "What to do with photos, voice notes, files...: 'markers' keeps a short "
        "marker such as [photo], 'drop' leaves them out (captions stay). Stickers always "
        "become their emoji.")
    gap: str = option(
        "auto", "Time gap that starts a new conversation: 'auto' (picked from the data, "
        "20m..12h) or a duration such as 30m, 6h, 1h30m, 1d.")
    val_fraction: float = option(
        0.1, "Share of each chat's latest conversations held out for validation (0..0.5).",
        ge=0.0, le=0.5)
    mask: bool = option(True, "Mask phone numbers, emails and card numbers (on by default).",
                        flags=("--mask/--no-mask",))
    mask_urls: bool = option(False, "Also mask URLs as [url].", flags=("--mask-urls",))
    keep_single_speaker: bool = option(
        False, "Keep conversations in which only one person wrote (dropped by default: "
        "nobody answered, so there is no exchange to learn from).",
        flags=("--keep-single-speaker",))
    bots: bool = option(False, "Keep messages written by bots (Discord marks them; left out by "
                        "default).", flags=("--bots",))
    transcribe: bool = option(
        False, "Turn voice messages into the words said, transcribed on this computer (needs "
        "pip install 'doppel[voice]' and an export with its media files: Telegram with media, "
        "the WhatsApp zip); transcripts are cached, so a second run is quick. Off by default: "
        "voice messages stay markers such as [voice 0:07].", flags=("--transcribe",))
    speech_model: Path | None = option(
        None, "The speech model for --transcribe: a faster-whisper (CTranslate2) model folder. "
        "Default: the English Whisper tiny.en model the voice extra installs.")
    force: bool = force_option()
    memory_index: EmbedderOptions = EmbedderOptions()

    @field_validator("me", "include", "exclude", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        """A single name (a library caller's me="Alex") is a list of one."""
        return (value,) if isinstance(value, str) else (value or ())

    @field_validator("gap")
    @classmethod
    def _duration(cls, value: str) -> str:
        if value != "auto":
            parse_duration(value)  # checked now, not halfway through the export
        return value

    @model_validator(mode="after")
    def _model_needs_transcribe(self) -> PrepareOptions:
        if self.speech_model is not None and not self.transcribe:
            raise ValueError("--speech-model is the model --transcribe uses; add --transcribe")
        return self

    @property
    def gap_seconds(self) -> float | None:
        """The fixed gap in seconds, or None for 'auto'."""
        return None if self.gap == "auto" else parse_duration(self.gap)


class PrepareCommand(Options):
    """`doppel prepare`'s exports, dataset folder and output switches, beside how the dataset is
    made (PrepareOptions, the manifest's "params")."""

    exports: list[Path] = option(
        help="Exports, any mix: Telegram result.json, WhatsApp .txt/.zip, Signal .txt, Discord "
        "(DiscordChatExporter) .json, Messenger/Instagram folder or zip.", argument=True,
        metavar="EXPORTS")
    output: Path | None = output_option("Dataset folder to write (not needed with "
                                        "--list-speakers).", None)
    quiet: bool = option(False, "No progress bar.", flags=("--quiet", "-q"))
    list_speakers: bool = option(
        False, "Print every speaker (name, messages, source; tab-separated, most active first) "
        "and write nothing: find your own name for --me.", flags=("--list-speakers",))


def parse_duration(text: str) -> float:
    """'90s', '30m', '6h', '1h30m', '1d' -> seconds; anything else is a DoppelError."""
    compact = text.strip().lower().replace(" ", "")
    parts = _GAP_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise DoppelError(
            f"--gap {text!r} is not a duration; use 'auto' or a number with a unit such as "
            "90s, 30m, 6h, 1h30m or 1d")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise DoppelError(f"--gap {text!r} must be longer than zero")
    return seconds
