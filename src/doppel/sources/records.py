"""The common record every export reader yields: the rest of doppel never sees a source format."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Chat:
    """A chat as the export describes it. `id` is normalised (see telegram.normalize_peer_id)."""

    id: str
    name: str
    type: str  # personal_chat, private_group, bot_chat, saved_messages, ... or "unknown"
    source: str = "telegram"  # the app it came from: conversations never span two sources


@dataclass(slots=True)
class Message:
    """One message, or a non-message event that matters for splitting (call, history clear).

    `drop` is None for a message that may be kept; otherwise the counted reason it is not
    conversation text ("service", "forward", "via_bot", ...). `kind` is "message" or "boundary"
    (a call or a history clear: a natural end of a conversation).
    """

    chat: Chat
    id: int
    time: float  # epoch seconds: UTC where the export says so, else local time read as UTC
    speaker_id: str | None
    speaker: str | None
    text: str
    kind: str = "message"
    drop: str | None = None
    media: str | None = None  # short marker such as "[photo]" or a sticker's emoji, when media
    pii: list[tuple[str, str]] = field(default_factory=list)  # (entity type, text) from the export
    # a voice or audio attachment's file, relative to the export (iMessage: to the database's
    # folder, e.g. "Attachments/ab/11/X/Audio Message.caf"; a zip's member name; Telegram: to
    # result.json's folder), for transcription (doppel/voice); None otherwise
    media_path: str | None = None


@dataclass(frozen=True, slots=True)
class ReadSettings:
    """What a reader may need from the user beyond the file: the date order of a WhatsApp export
    whose dates fit both day-first and month-first ("auto" infers it from the whole file)."""

    date_order: str = "auto"
