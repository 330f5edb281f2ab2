"""Write a large synthetic WhatsApp "Export chat" file (Android, US English) fast.

Usage: python bench/synth_whatsapp.py OUT.txt MESSAGES   (e.g. /tmp/whatsapp-1m.txt 1000000)

One chat of two people in today's Android shape: `3/12/24, 10:15\u202fPM - Name: text`, with the
words of bench/synth_export.py, multi-line messages, `<Media omitted>`, deleted and edited
messages, U+200E marks and a system line now and then, so the reader does its real work.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from synth_export import START, WORDS

PEOPLE = ("Alex Doe", "Sam Lee")
POOL_SIZE = 4000


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14)))


def _body(rng: random.Random) -> str:
    """One message after its header: `Name: text`, or a system line."""
    roll = rng.random()
    name = PEOPLE[rng.random() < 0.5]
    if roll < 0.01:
        return f"Your security code with {PEOPLE[1]} changed. Tap to learn more."
    if roll < 0.08:
        return f"{name}: <Media omitted>"
    if roll < 0.09:
        return f"{name}: This message was deleted"
    if roll < 0.12:
        return f"{name}: {_text(rng)}\n{_text(rng)}\n\n{_text(rng)}"
    if roll < 0.15:
        return f"{name}: {_text(rng)} \u200e<This message was edited>"
    if roll < 0.17:
        return f"{name}: \u200eIMG-20240312-WA{rng.randint(0, 9999):04d}.jpg (file attached)"
    return f"{name}: {_text(rng)}"


def write_export(path: Path, total: int, seed: int = 0) -> int:
    """Write `total` messages; returns the file size in bytes."""
    rng = random.Random(seed)
    pool = [_body(rng) for _ in range(POOL_SIZE)]
    when = START
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
        out.write("3/1/20, 9:00\u202fAM - Messages and calls are end-to-end encrypted. No one "
                  "outside of this chat, not even WhatsApp, can read or listen to them.\n")
        for i in range(total - 1):
            when += rng.randint(1, 3000) if i % 50 else 90_000
            moment = datetime.fromtimestamp(when, UTC)
            hour = moment.hour % 12 or 12
            half = "AM" if moment.hour < 12 else "PM"
            out.write(f"{moment.month}/{moment.day}/{moment.year % 100:02d}, "
                      f"{hour}:{moment.minute:02d}\u202f{half} - {pool[i % POOL_SIZE]}\n")
    return path.stat().st_size


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[2])
    size = write_export(Path(sys.argv[1]), int(sys.argv[2]))
    print(f"wrote {sys.argv[1]}: {size / 1e6:.0f} MB")
