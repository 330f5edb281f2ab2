"""Reading a Telegram message the way `doppel prepare` read the export: the same media markers
(a sticker's emoji, "[photo]", "[voice 0:07]"), the same defusing of chat-format look-alikes, the
same name cleaning. The twin then sees in a live chat what it saw in training."""

from __future__ import annotations

import re
from typing import Any

from telegram import Message, User

from doppel.chatformat import defuse
from doppel.data.speakers import clean_name
from doppel.sources.tgmessage import media_marker


def message_text(message: Message) -> str | None:
    """The message as a history line, or None when it carries nothing to read (a join, a pin)."""
    text = (message.text or message.caption or "").strip()
    export = _as_export(message)
    media = media_marker(export) if export else None
    if media:  # as the dataset writes it (doppel.data.pipeline): the marker, then the caption
        text = f"{media} {text}" if text else media
    return defuse(text) if text else None


def _as_export(message: Message) -> dict[str, Any] | None:
    """The Bot API's media fields renamed to the export's, so one function names every medium."""
    def seconds(item) -> int:
        return int(item.to_dict().get("duration") or 0)

    if message.photo:
        return {"photo": "photo"}
    kinds = [
        (message.sticker, lambda s: {"media_type": "sticker", "sticker_emoji": s.emoji}),
        (message.voice, lambda v: {"media_type": "voice_message", "duration_seconds": seconds(v)}),
        (message.video_note,
         lambda v: {"media_type": "video_message", "duration_seconds": seconds(v)}),
        (message.animation, lambda _: {"media_type": "animation"}),
        (message.video, lambda _: {"media_type": "video_file"}),
        (message.audio, lambda _: {"media_type": "audio_file"}),
        (message.document, lambda _: {"file": "file"}),
        (message.poll, lambda p: {"poll": {"question": p.question}}),
        (message.venue or message.location, lambda _: {"location_information": {}}),
        (message.contact, lambda _: {"contact_information": {}}),
        (message.game, lambda g: {"game_title": g.title}),
        (message.invoice, lambda _: {"invoice_information": {}}),
    ]
    return next((make(item) for item, make in kinds if item), None)


def speaker_name(user: User, friends: dict[int, str], persona: str) -> str:
    """The name the twin knows a Telegram user by: --friend's, else their first name. Someone
    who shares the persona's name gets " (2)", as a dataset names a second Alex."""
    name = friends.get(user.id) or clean_name(user.first_name, user.username or f"user{user.id}")
    return f"{name} (2)" if name.casefold() == persona.casefold() else name


def display(user: User) -> str:
    """A user as the owner's log shows them: name and @username, never their messages."""
    handle = f", @{user.username}" if user.username else ""
    return f"{user.full_name}{handle}"


def addressed(message: Message, bot: User) -> bool:
    """In a group: the message mentions the bot or replies to one of its messages."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return True
    for entities in (message.parse_entities(), message.parse_caption_entities()):
        for entity, text in entities.items():
            if entity.type == "text_mention" and entity.user and entity.user.id == bot.id:
                return True
            if entity.type == "mention" and bot.username and \
                    text.casefold() == f"@{bot.username}".casefold():
                return True
    return False


def without_mention(text: str, bot: User) -> str:
    """The text without "@the_bot": addressing the twin is not part of what was said."""
    if not bot.username:
        return text
    stripped = re.sub(rf"@{re.escape(bot.username)}\b", "", text, flags=re.IGNORECASE)
    return re.sub(r" {2,}", " ", stripped).strip() or text
