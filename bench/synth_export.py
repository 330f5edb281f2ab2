"""Write large synthetic Telegram full-account exports fast, by streaming JSON text.

Usage: python bench/synth_export.py OUT.json MESSAGES   (e.g. /tmp/export-1m.json 1000000)

The messages look like a real export (Telegram's one-space indentation, text lists, text_entities,
media, service events, forwards, a `\\xHH` escape now and then) so the reader does its real work.
A pool of pre-rendered message bodies is filled in with ids and dates, which keeps generation at
well over a million messages a minute.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

ME = (1000001, "Alex", "Doe")
WORDS = ("hey", "ok", "yes", "no", "lol", "maybe", "tomorrow", "today", "what", "why", "how",
         "good", "coffee", "train", "work", "home", "привет", "как", "дела", "нормально", "завтра",
         "сегодня", "спасибо", "пока", "да", "нет", "круто", "🙂")
POOL_SIZE = 4000
START = 1_600_000_000


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14)))


def _entities(rng: random.Random) -> list:
    """A text list as the exporter writes it: plain strings mixed with typed parts."""
    kinds = [("bold", "important"), ("link", "https://example.com/x"),
             ("email", "sam@example.com"), ("phone", "+1 555 0199"), ("mention", "@sam")]
    kind, text = rng.choice(kinds)
    return [_text(rng) + " ", {"type": kind, "text": text}, " " + _text(rng)]


def _body(rng: random.Random, peer: tuple[int, str]) -> dict:
    """One message without id/date; the sender is `me` or the chat's peer."""
    uid, name = (ME[0], ME[1] + " " + ME[2]) if rng.random() < 0.45 else peer
    roll = rng.random()
    msg: dict = {"type": "message", "from": name, "from_id": f"user{uid}"}
    if roll < 0.03:
        return {"type": "service", "actor": name, "actor_id": f"user{uid}",
                "action": "phone_call", "duration_seconds": rng.randint(5, 600),
                "discard_reason": "hangup", "text": "", "text_entities": []}
    if roll < 0.10:
        msg["photo"] = "(File not included. Change data exporting settings to download.)"
        msg.update(width=960, height=1280)
        parts: list = [""]
    elif roll < 0.15:
        msg.update(file="stickers/s.webp", media_type="sticker", sticker_emoji="😂")
        parts = [""]
    elif roll < 0.18:
        msg.update(file="voice/a.ogg", media_type="voice_message", mime_type="audio/ogg",
                   duration_seconds=rng.randint(1, 90))
        parts = [""]
    elif roll < 0.30:
        parts = _entities(rng)
    else:
        parts = [_text(rng)]
    if rng.random() < 0.05:
        msg["forwarded_from"] = "Some Channel"
    if rng.random() < 0.1:
        msg["reply_to_message_id"] = rng.randint(1, 1000)
    if rng.random() < 0.01:
        parts[-1] = parts[-1] + "\x0b"  # the exporter writes control bytes as \xHH
    msg["text"] = parts[0] if len(parts) == 1 else parts
    msg["text_entities"] = [p if isinstance(p, dict) else {"type": "plain", "text": p}
                            for p in parts if p != ""]
    return msg


def _render(body: dict) -> str:
    """Pretty-print like the exporter and leave %d/%s slots for id, date and unixtime."""
    head = {"id": 0, "type": body["type"], "date": "D", "date_unixtime": "U"}
    rest = {k: v for k, v in body.items() if k != "type"}
    text = json.dumps({**head, **rest}, ensure_ascii=False, indent=1)
    text = text.replace("%", "%%").replace('"id": 0', '"id": %d', 1)
    text = text.replace('"date": "D"', '"date": "%s"', 1).replace('"U"', '"%d"', 1)
    text = text.replace("\\u000b", "\\x0b")  # real exports carry the invalid JSON escape
    return "\n".join("   " + line for line in text.splitlines())


def _chat_sizes(total: int, rng: random.Random) -> list[int]:
    """One big chat (40%), the rest spread over a hundred smaller ones."""
    big = int(total * 0.4)
    rest = total - big
    weights = [rng.random() + 0.1 for _ in range(100)]
    scale = rest / sum(weights)
    sizes = [big] + [int(w * scale) for w in weights]
    sizes[1] += total - sum(sizes)
    return sizes


def write_export(path: Path, total: int, seed: int = 0) -> int:
    """Write a full-account export with `total` messages; returns the file size in bytes."""
    from datetime import UTC, datetime

    rng = random.Random(seed)
    sizes = _chat_sizes(total, rng)
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
        out.write('{\n "about": "Here is the data you requested.",\n "personal_information": ')
        info = {"user_id": ME[0], "first_name": ME[1], "last_name": ME[2],
                "phone_number": "+1 555 0100", "username": "@alex", "bio": ""}
        out.write(json.dumps(info, indent=1).replace("\n", "\n ") + ',\n "chats": {\n')
        out.write('  "about": "This page lists all chats from this export.",\n  "list": [\n')
        for index, size in enumerate(sizes):
            peer = (2_000_000 + index, f"Friend {index}")
            pool = [_render(_body(rng, peer)) for _ in range(min(POOL_SIZE, max(size, 1)))]
            out.write(f'   {{\n    "name": "{peer[1]}",\n    "type": "personal_chat",\n'
                      f'    "id": {peer[0]},\n    "messages": [\n')
            when = START + index * 97
            for i in range(size):
                when += rng.randint(1, 3000) if i % 50 else 90_000
                stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S")
                sep = ",\n" if i < size - 1 else "\n"
                out.write(pool[i % len(pool)] % (i + 1, stamp, when) + sep)
            out.write("    ]\n   }" + (",\n" if index < len(sizes) - 1 else "\n"))
        out.write("  ]\n }\n}\n")
    return path.stat().st_size


def run_from_command_line(write: Callable[[Path, int], int], doc: str) -> None:
    """`python SCRIPT OUT MESSAGES`: write the export, say where and how big."""
    if len(sys.argv) != 3:
        sys.exit(doc.splitlines()[2])
    size = write(Path(sys.argv[1]), int(sys.argv[2]))
    print(f"wrote {sys.argv[1]}: {size / 1e6:.0f} MB")


if __name__ == "__main__":
    run_from_command_line(write_export, __doc__)
