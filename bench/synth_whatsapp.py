"""Write a large synthetic WhatsApp "Export chat" file (Android, US English) fast.

Usage: python bench/synth_whatsapp.py OUT.txt MESSAGES   (e.g. /tmp/whatsapp-1m.txt 1000000)

One chat of two people in today's Android shape: `3/12/24, 10:15\u202fPM - Name: text`, with the
words of bench/synth_export.py, multi-line messages, `<Media omitted>`, deleted and edited
messages, U+200E marks and a system line now and then, so the reader does its real work.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from synth_export import START, WORDS, run_from_command_line

PEOPLE = ("Alex Doe", "Sam Lee")
POOL_SIZE = 4000


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14)))


# (share of messages up to here, body after "Name: "); {t} is random text, {n} a number
KINDS = ((0.07, "<Media omitted>"), (0.08, "This message was deleted"),
         (0.11, "{t}\n{t}\n\n{t}"), (0.14, "{t} \u200e<This message was edited>"),
         (0.16, "\u200eIMG-20240312-WA{n:04d}.jpg (file attached)"), (1.0, "{t}"))


def _body(rng: random.Random) -> str:
    """One message after its header: `Name: text`, or (1%) a system line."""
    if rng.random() < 0.01:
        return f"Your security code with {PEOPLE[1]} changed. Tap to learn more."
    roll = rng.random()
    template = next(body for share, body in KINDS if roll < share)
    text = template.replace("{t}", "\0").format(n=rng.randint(0, 9999))
    while "\0" in text:
        text = text.replace("\0", _text(rng), 1)
    return f"{PEOPLE[rng.random() < 0.5]}: {text}"


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
    run_from_command_line(write_export, __doc__)
