"""The bot's memory: each chat's history, who is in each chat and whom it refused, in one
owner-only SQLite file.

A restart reads the same file and continues every conversation; each chat keeps only its newest
messages, so the file stays small however long the bot runs. People are kept by Telegram user id
(each message's sender, each chat's members: everyone the bot has seen there, whether they spoke
lately or not); names are only what the history shows. A file from before ids were kept is
migrated on open: a private chat's member is the chat itself (Telegram numbers a private chat by
its user), a group's earlier members are unknown (UNKNOWN_MEMBER: memory stays off in
that group until /reset).
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
    time REAL NOT NULL,
    user_id INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_chat ON messages (chat_id, id);
CREATE TABLE IF NOT EXISTS members (
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);
CREATE TABLE IF NOT EXISTS refused (
    user_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    time REAL NOT NULL
);
"""
MESSAGES_PER_TURN = 10  # the bound per chat is max_history turns of at most this many messages
UNKNOWN_MEMBER = 0  # a group member from before ids were kept: a scope of its chat alone


class ChatStore:
    """Histories per chat, oldest first; every write is committed at once."""

    def __init__(self, path: Path, max_history: int) -> None:
        self.path = Path(path)
        self.max_history = max_history
        self.keep = max_history * MESSAGES_PER_TURN
        self.db = _connect(self.path)

    def add(self, chat_id: int, speaker: str, text: str, user_id: int | None = None) -> int:
        """Append a message (`user_id`: its Telegram sender; None: the twin's own); returns its
        row id (for `remove`). The sender becomes a member of the chat."""
        with self.db:
            row = self.db.execute("INSERT INTO messages (chat_id, speaker, text, time, user_id) "
                                  "VALUES (?, ?, ?, ?, ?)",
                                  (chat_id, speaker, text, time.time(), user_id))
            if user_id is not None:
                self._seen(chat_id, user_id, speaker)
            self.db.execute("DELETE FROM messages WHERE chat_id = ? AND id <= (SELECT id FROM "
                            "messages WHERE chat_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                            (chat_id, chat_id, self.keep))
        return row.lastrowid

    def seen(self, chat_id: int, user_id: int, name: str) -> None:
        """Someone is in the chat (they wrote, joined, or were refused there): from now on the
        chat's memory scope counts them, whether they speak again or not."""
        with self.db:
            self._seen(chat_id, user_id, name)

    def _seen(self, chat_id: int, user_id: int, name: str) -> None:
        self.db.execute("INSERT INTO members (chat_id, user_id, name) VALUES (?, ?, ?) "
                        "ON CONFLICT (chat_id, user_id) DO UPDATE SET name = excluded.name",
                        (chat_id, user_id, name))

    def members(self, chat_id: int) -> dict[int, str]:
        """Telegram user id -> last known name of everyone seen in the chat."""
        return dict(self.db.execute("SELECT user_id, name FROM members WHERE chat_id = ? "
                                    "ORDER BY user_id", (chat_id,)).fetchall())

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
        """Forget a chat's history (its members stay: a silent member is still there); returns
        how many messages went."""
        with self.db:
            self.db.execute("DELETE FROM members WHERE chat_id = ? AND user_id = ?",
                            (chat_id, UNKNOWN_MEMBER))
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
        _migrate(db)
        db.executescript(SCHEMA)  # fails here, not later, on a file that is not SQLite
    except (OSError, sqlite3.DatabaseError) as error:
        raise DoppelError(f"cannot open the bot's state file {path}: {error}; choose another "
                          "with --state") from None
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """A file from before the bot kept Telegram ids: each message gets an empty sender, each
    chat with messages its members (a private chat's user is its id; a group's earlier members
    cannot be known: UNKNOWN_MEMBER, until /reset)."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(messages)")]
    if not columns or "user_id" in columns:
        return
    db.execute("ALTER TABLE messages ADD COLUMN user_id INTEGER")
    db.executescript(SCHEMA)
    chats = [row[0] for row in db.execute("SELECT DISTINCT chat_id FROM messages")]
    with db:
        db.executemany("INSERT OR IGNORE INTO members (chat_id, user_id, name) VALUES (?, ?, ?)",
                       [(chat, chat if chat > 0 else UNKNOWN_MEMBER, "earlier member")
                        for chat in chats])
