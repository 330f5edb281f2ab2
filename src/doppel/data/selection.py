"""Which chats become training data: personal chats by default, the rest on request, all counted."""

from __future__ import annotations

import re
from collections import Counter

from doppel.data.options import PrepareOptions
from doppel.errors import DoppelError
from doppel.sources.records import Chat

PERSONAL_TYPES = {"personal_chat"}
GROUP_TYPES = {"private_group", "private_supergroup", "public_supergroup", "group", "supergroup"}
# chat type -> reason it is left out by default (nobody in them is talking *with* you)
SKIPPED_TYPES = {
    "bot_chat": "bot",
    "saved_messages": "saved_messages",
    "private_channel": "channel",
    "public_channel": "channel",
    "channel": "channel",
    "replies": "replies",
    "verification_codes": "verification_codes",
}
# what to tell the user for each skip reason
ADVICE = {
    "group": "use --groups",
    "excluded": "from --exclude",
    "not_included": "not named by --include",
    "bot": "use --include",
    "saved_messages": "use --include",
    "channel": "use --include",
    "replies": "use --include",
    "verification_codes": "use --include",
    "unknown_type": "use --include",
}
_DIGITS = re.compile(r"\d+")


def _matches(chat: Chat, wanted: str) -> bool:
    """A chat matches its id (user123 or 123) or its name (case-insensitive)."""
    wanted = wanted.strip()
    if wanted == chat.id or wanted.casefold() == chat.name.casefold():
        return True
    return wanted.isdigit() and _DIGITS.findall(chat.id) == [wanted]


def skip_reason(chat: Chat, options: PrepareOptions) -> str | None:
    """None when the chat is used, else the counted reason it is not."""
    if any(_matches(chat, name) for name in options.exclude):
        return "excluded"
    if options.include:
        return None if any(_matches(chat, name) for name in options.include) else "not_included"
    if chat.type in PERSONAL_TYPES:
        return None
    if chat.type in GROUP_TYPES:
        return None if options.groups else "group"
    return SKIPPED_TYPES.get(chat.type, "unknown_type")


def unmatched_includes(chats: list[Chat], options: PrepareOptions) -> list[str]:
    """--include names that matched no chat (probably a typo)."""
    return [name for name in options.include if not any(_matches(c, name) for c in chats)]


def no_chats_error(skipped: Counter[str], total: int) -> DoppelError:
    """The error for a selection that left nothing, saying what each filter removed."""
    if total == 0:
        return DoppelError("the export has no chats with messages; check that it is the chat "
                           "export the app wrote, with its messages")
    parts = ", ".join(f"{count} {reason} ({ADVICE.get(reason, '')})"
                      for reason, count in skipped.most_common())
    return DoppelError(f"no chats left after selection (of {total}: {parts}); "
                       "try --groups, or --include CHAT for a chat by name or id")
