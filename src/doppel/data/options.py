"""Every `doppel prepare` option in one place: its default and help feed the CLI and the library."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from doppel.errors import DoppelError

MEDIA_MODES = ("markers", "drop")
DATE_ORDERS = ("auto", "dmy", "mdy", "ymd")
# the automatic session gap never leaves this range, whatever the histogram says
AUTO_GAP_MIN_S = 20 * 60.0
AUTO_GAP_MAX_S = 12 * 3600.0

_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_GAP_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class PrepareOptions:
    """How an export becomes a dataset; validated on construction (bad values raise DoppelError)."""

    me: tuple[str, ...] = _opt(
        (), "Who you are: an id (user123 or 123) or your exact display name; repeat it when "
        "your name differs between apps. Default: the export's owner (Telegram full exports); "
        "required for single-chat exports, WhatsApp, Signal, Discord.")
    identities: str | None = _opt(
        None, "A YAML file listing people and their name or id in each app (telegram: user123, "
        "whatsapp: Sam): merges a friend found in several apps into one speaker; `me: true` "
        "marks you.")
    date_order: str = _opt(
        "auto", "Date order of WhatsApp exports: 'auto' (inferred from the whole file), or "
        "dmy, mdy, ymd when a file's dates fit both day-first and month-first.")
    groups: bool = _opt(False, "Also use group chats (personal chats only by default).")
    include: tuple[str, ...] = _opt(
        (), "Use only these chats (name or id; repeatable). Overrides the chat-type filters.")
    exclude: tuple[str, ...] = _opt((), "Leave out these chats (name or id; repeatable).")
    media: str = _opt(
        "markers", "What to do with photos, voice notes, files...: 'markers' keeps a short "
        "marker such as [photo], 'drop' leaves them out (captions stay). Stickers always "
        "become their emoji.")
    gap: str = _opt(
        "auto", "Time gap that starts a new conversation: 'auto' (picked from the data, "
        "20m..12h) or a duration such as 30m, 6h, 1h30m, 1d.")
    val_fraction: float = _opt(
        0.1, "Share of each chat's latest conversations held out for validation (0..0.5).")
    mask: bool = _opt(True, "Mask phone numbers, emails and card numbers (on by default).")
    mask_urls: bool = _opt(False, "Also mask URLs as [url].")
    keep_single_speaker: bool = _opt(
        False, "Keep conversations in which only one person wrote (dropped by default: "
        "nobody answered, so there is no exchange to learn from).")
    bots: bool = _opt(False, "Keep messages written by bots (Discord marks them; left out by "
                      "default).")
    force: bool = _opt(False, "Replace the output folder if it exists.")

    def __post_init__(self) -> None:
        if self.media not in MEDIA_MODES:
            raise DoppelError(
                f"--media must be one of {', '.join(MEDIA_MODES)}, not {self.media!r}")
        if self.date_order not in DATE_ORDERS:
            raise DoppelError(f"--date-order must be one of {', '.join(DATE_ORDERS)}, "
                              f"not {self.date_order!r}")
        if not 0.0 <= self.val_fraction <= 0.5:
            raise DoppelError(f"--val-fraction must be between 0 and 0.5, not {self.val_fraction}")
        for name in ("me", "include", "exclude"):
            value = getattr(self, name)
            value = (value,) if isinstance(value, str) else tuple(value or ())
            object.__setattr__(self, name, value)
        self.gap_seconds  # noqa: B018 - validates the gap now, not halfway through the export

    @property
    def gap_seconds(self) -> float | None:
        """The fixed gap in seconds, or None for 'auto'."""
        return None if self.gap == "auto" else parse_duration(self.gap)

    def to_json(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


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


def option_help(name: str) -> str:
    """The help text of one option, for the CLI flag (escaped: typer renders rich markup)."""
    from rich.markup import escape

    return escape(next(f.metadata["help"] for f in fields(PrepareOptions) if f.name == name))


DEFAULTS = PrepareOptions()
