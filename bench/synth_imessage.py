"""Write a large synthetic Messages database (macOS chat.db schema) fast.

Usage: python bench/synth_imessage.py OUT.db MESSAGES   (e.g. /tmp/chat-1m.db 1000000)

The schema is tests/imessage_db.py's (the real tables, joins and indexes). Like a recent Mac's
database, about half the bodies are only in attributedBody (typedstream), and there are tapbacks,
edited messages, attachments (photos, voice messages) and 40 chats, three of them groups, so the
reader does its real work. Rows go in with executemany in one transaction.
"""

from __future__ import annotations

import plistlib
import random
import sqlite3
import sys
from pathlib import Path

from synth_export import START, WORDS, run_from_command_line

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from doppel.sources.typedstream import encode
from imessage_db import NEW_COLUMNS, SCHEMA, apple_date

CHATS = 40
GROUPS = 3
COLUMNS = ("ROWID", "guid", "text", "handle_id", "attributedBody", "date", "is_from_me",
           "is_audio_message", "cache_has_attachments", "associated_message_type",
           "date_edited", "message_summary_info")


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14)))


def _row(rng: random.Random, rowid: int, when: float, handle: int) -> tuple:
    text = _text(rng)
    roll = rng.random()
    mine = rng.random() < 0.45
    reaction, files, edited, summary = 0, 0, 0, None
    if roll < 0.04:
        reaction, text = 2000 + rng.randint(0, 5), f"Loved “{text}”"
    elif roll < 0.10:
        files, text = 1, "\ufffc"
    elif roll < 0.11:
        edited = apple_date(when + 30)
        summary = plistlib.dumps({"ec": {"0": [{"t": encode(text + "x"), "d": 1.0},
                                                {"t": encode(text), "d": 2.0}]}},
                                 fmt=plistlib.FMT_BINARY)
    body = encode(text)
    column_text = text if rng.random() < 0.5 else None  # newer macOS: the blob only
    return (rowid, f"G{rowid}", column_text, 0 if mine else handle, body, apple_date(when),
            int(mine), int(files and roll < 0.07), files, reaction, edited, summary)


def write_export(path: Path, messages: int) -> int:
    """Write `messages` rows; returns the file size in bytes."""
    rng = random.Random(0)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA.format(new=NEW_COLUMNS))
    db.executemany("INSERT INTO handle (ROWID, id, service) VALUES (?, ?, 'iMessage')",
                   [(n, f"+1415555{n:04d}" if n % 3 else f"friend{n}@example.com")
                    for n in range(1, CHATS + 10)])
    chats = []
    for chat in range(1, CHATS + 1):
        members = [chat, chat + 1, chat + 2] if chat <= GROUPS else [chat]
        style = 43 if chat <= GROUPS else 45
        db.execute("INSERT INTO chat (ROWID, guid, style, chat_identifier, display_name) VALUES "
                   "(?, ?, ?, ?, ?)", (chat, f"c{chat}", style, f"c{chat}",
                                       f"Group {chat}" if style == 43 else None))
        db.executemany("INSERT INTO chat_handle_join VALUES (?, ?)", [(chat, h) for h in members])
        chats.append(members)
    rowid, when = 0, float(START)
    per_chat = messages // CHATS
    for chat, members in enumerate(chats, 1):
        count = per_chat + (messages - per_chat * CHATS if chat == CHATS else 0)
        rows, joins, attached = [], [], []
        for _ in range(count):
            rowid += 1
            when += rng.expovariate(1 / 90)
            row = _row(rng, rowid, when, rng.choice(members))
            rows.append(row)
            joins.append((chat, rowid, row[5]))
            if row[8]:
                audio = row[7]
                attached.append((rowid, f"A{rowid}", "audio/x-caf" if audio else "image/jpeg",
                                 f"~/Library/Messages/Attachments/{rowid % 256:02x}/{rowid}/"
                                 + ("Audio Message.caf" if audio else "IMG.jpeg")))
        db.executemany(f"INSERT INTO message ({', '.join(COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(COLUMNS))})", rows)
        db.executemany("INSERT INTO chat_message_join VALUES (?, ?, ?)", joins)
        db.executemany("INSERT INTO attachment (ROWID, guid, mime_type, filename) VALUES "
                       "(?, ?, ?, ?)", [(r, g, m, f) for r, g, m, f in attached])
        db.executemany("INSERT INTO message_attachment_join VALUES (?, ?)",
                       [(r, r) for r, *_ in attached])
    db.commit()
    db.close()
    return path.stat().st_size


if __name__ == "__main__":
    run_from_command_line(write_export, __doc__)
