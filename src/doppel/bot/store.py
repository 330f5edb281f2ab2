"""The bot's memory: each chat's history and whom it refused, in one owner-only SQLite file.

A restart reads the same file and continues every conversation; each chat keeps only its newest
messages, so the file stays small however long the bot runs.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from doppel.errors import DoppelError

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id INTEGER NOT NULL,
    speaker TEXT NOT NULL,
    text TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_chat ON messages (chat_id, id);
CREATE TABLE IF NOT EXISTS refused (
    user_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    time REAL NOT NULL
);
"""
MESSAGES_PER_TURN = 10  # the bound per chat is max_history turns of at most this many messages


class ChatStore:
    """Histories per chat, oldest first; every write is committed at once."""

    def __init__(self, path: Path, max_history: int) -> None:
        self.path = Path(path)
        self.max_history = max_history
        self.keep = max_history * MESSAGES_PER_TURN
        self.db = _connect(self.path)

    def add(self, chat_id: int, speaker: str, text: str) -> int:
        """Append a message; returns its row id (for `remove`)."""
        with self.db:
            row = self.db.execute("INSERT INTO messages (chat_id, speaker, text, time) "
                                  "VALUES (?, ?, ?, ?)", (chat_id, speaker, text, time.time()))
            self.db.execute("DELETE FROM messages WHERE chat_id = ? AND id <= (SELECT id FROM "
                            "messages WHERE chat_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                            (chat_id, chat_id, self.keep))
        return row.lastrowid

    def remove(self, row_id: int) -> None:
        with self.db:
            self.db.execute("DELETE FROM messages WHERE id = ?", (row_id,))

    def history(self, chat_id: int) -> list[tuple[str, str]]:
        """The chat's last max_history turns (a turn: consecutive messages of one speaker)."""
        return [(speaker, text) for speaker, text, _ in self.window(chat_id)]

    def window(self, chat_id: int) -> list[tuple[str, str, float]]:
        """history() with each message's time (epoch seconds), oldest first."""
        rows = self.db.execute("SELECT speaker, text, time FROM messages WHERE chat_id = ? "
                               "ORDER BY id DESC LIMIT ?", (chat_id, self.keep)).fetchall()
        kept: list[tuple[str, str, float]] = []
        turns = 0
        for speaker, text, when in rows:
            if not kept or kept[-1][0] != speaker:
                turns += 1
                if turns > self.max_history:
                    break
            kept.append((speaker, text, when))
        return kept[::-1]

    def recent(self, chat_id: int, limit: int) -> list[tuple[int, str, str, float]]:
        """The chat's last `limit` messages as (row id, speaker, text, time), oldest first."""
        rows = self.db.execute("SELECT id, speaker, text, time FROM messages WHERE chat_id = ? "
                               "ORDER BY id DESC LIMIT ?", (chat_id, limit)).fetchall()
        return rows[::-1]

    def reset(self, chat_id: int) -> int:
        """Forget a chat; returns how many messages went."""
        with self.db:
            return self.db.execute("DELETE FROM messages WHERE chat_id = ?", (chat_id,)).rowcount

    def first_refusal(self, user_id: int, name: str) -> bool:
        """Record a refused user; True only the first time ever (they get one polite line)."""
        with self.db:
            cursor = self.db.execute("INSERT OR IGNORE INTO refused (user_id, name, time) "
                                     "VALUES (?, ?, ?)", (user_id, name, time.time()))
        return cursor.rowcount == 1

    def close(self) -> None:
        self.db.close()


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating) the file readable by its owner only: it holds private chats. SQLite
    gives its journal the database file's permissions."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        db = sqlite3.connect(path)
        db.executescript(SCHEMA)  # fails here, not later, on a file that is not SQLite
    except (OSError, sqlite3.DatabaseError) as error:
        raise DoppelError(f"cannot open the bot's state file {path}: {error}; choose another "
                          "with --state") from None
    return db
