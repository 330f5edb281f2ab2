"""Build Messages databases in the schema macOS writes (chat.db; an iPhone's sms.db is the same),
for what the two real fixtures lack: chats and group chats, attachments, voice messages, edits,
unsent messages, and the older schemas without the newer columns. Used by tests and by
bench/synth_imessage.py (a million messages)."""

from __future__ import annotations

import hashlib
import plistlib
import sqlite3
from pathlib import Path

from doppel.sources.typedstream import encode

EPOCH_2001 = 978307200
# the message columns macOS 13 has that older schemas lack (macOS 10.12: none of them)
NEW_COLUMNS = ("date_edited INTEGER DEFAULT 0, date_retracted INTEGER DEFAULT 0, "
               "message_summary_info BLOB, thread_originator_guid TEXT, ")
SCHEMA = """
CREATE TABLE handle (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, id TEXT NOT NULL,
    country TEXT, service TEXT NOT NULL, uncanonicalized_id TEXT, person_centric_id TEXT,
    UNIQUE (id, service));
CREATE TABLE message (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL,
    text TEXT, handle_id INTEGER DEFAULT 0, attributedBody BLOB, service TEXT, date INTEGER,
    date_read INTEGER, is_from_me INTEGER DEFAULT 0, is_audio_message INTEGER DEFAULT 0,
    cache_has_attachments INTEGER DEFAULT 0, item_type INTEGER DEFAULT 0, group_title TEXT,
    associated_message_guid TEXT, associated_message_type INTEGER DEFAULT 0, {new}
    is_read INTEGER DEFAULT 0);
CREATE TABLE chat (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL,
    style INTEGER, state INTEGER, account_id TEXT, chat_identifier TEXT, service_name TEXT,
    display_name TEXT);
CREATE TABLE chat_message_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
    message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE, message_date INTEGER
    DEFAULT 0, PRIMARY KEY (chat_id, message_id));
CREATE INDEX chat_message_join_idx_message_id_only ON chat_message_join(message_id);
CREATE TABLE chat_handle_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
    handle_id INTEGER REFERENCES handle (ROWID) ON DELETE CASCADE, UNIQUE(chat_id, handle_id));
CREATE TABLE attachment (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL,
    created_date INTEGER DEFAULT 0, filename TEXT, uti TEXT, mime_type TEXT,
    transfer_name TEXT, total_bytes INTEGER DEFAULT 0);
CREATE TABLE message_attachment_join (message_id INTEGER REFERENCES message (ROWID) ON DELETE
    CASCADE, attachment_id INTEGER REFERENCES attachment (ROWID) ON DELETE CASCADE,
    UNIQUE(message_id, attachment_id));
CREATE INDEX message_attachment_join_idx_message_id ON message_attachment_join(message_id);
"""


def apple_date(unix: float, seconds: bool = False) -> int:
    """A Messages date: nanoseconds since 2001 (seconds when `seconds`, as before macOS 10.13)."""
    since = unix - EPOCH_2001
    return int(since) if seconds else int(since * 1e9)


class MessagesDB:
    """A Messages database being written: handles, chats, messages, attachments."""

    def __init__(self, path: Path, *, old_schema: bool = False) -> None:
        # guids are unique to a database, as the real ones (random UUIDs) are; ROWIDs are not
        self.token = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:12]
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA.format(new="" if old_schema else NEW_COLUMNS))
        self.old = old_schema
        self.count = 0

    def handle(self, name: str) -> int:
        cursor = self.db.execute("INSERT INTO handle (id, service) VALUES (?, 'iMessage')",
                                 (name,))
        return int(cursor.lastrowid or 0)

    def chat(self, handles: list[int], name: str | None = None, style: int | None = None) -> int:
        style = style or (43 if len(handles) > 1 else 45)
        ident = f"chat{len(handles)}{self.count}" if style == 43 else str(handles[0])
        # the guid macOS writes: a one-to-one chat's names the other's handle (the same chat on
        # every device), a group's a random number
        other = self.db.execute("SELECT id FROM handle WHERE ROWID = ?", (handles[0],)).fetchone()
        guid = (f"iMessage;+;chat{self.token}{self.count}" if style == 43 or other is None
                else f"iMessage;-;{other[0]}")
        cursor = self.db.execute(
            "INSERT INTO chat (guid, style, chat_identifier, display_name) VALUES (?, ?, ?, ?)",
            (guid, style, ident, name))
        chat_id = int(cursor.lastrowid or 0)
        self.db.executemany("INSERT INTO chat_handle_join VALUES (?, ?)",
                            [(chat_id, h) for h in handles])
        return chat_id

    def message(self, chat: int | None, when: float, *, text: str | None = None,
                body: str | None = None, handle: int = 0, mine: bool = False,
                reaction: int = 0, item: int = 0, edits: list[str] | None = None,
                unsent: bool = False, retracted: bool = False, seconds: bool = False,
                files: list[tuple[str, str]] = (), audio: bool = False) -> int:
        """One row: `text` in the text column, `body` only in attributedBody; `edits` the
        versions of an edited message (the last is final); `unsent` the macOS 13 form (edited,
        no text, the part listed as retracted); `files` (mime type, filename) attachments."""
        self.count += 1
        blob = encode(body if body is not None else text) if (body or text) else None
        row = {"guid": f"GUID-{self.token}-{self.count}", "text": text, "handle_id": handle,
               "attributedBody": blob, "date": apple_date(when, seconds), "is_from_me": int(mine),
               "associated_message_type": reaction, "item_type": item,
               "cache_has_attachments": int(bool(files)), "is_audio_message": int(audio),
               "associated_message_guid": "p:0/GUID-1" if reaction else None}
        if not self.old:
            info = None
            if edits:
                info = {"ec": {"0": [{"t": encode(v), "d": 1.0 + n} for n, v in enumerate(edits)]},
                        "ep": [0]}
            elif unsent:
                info = {"rp": [0], "ec": {}}
            row |= {"date_edited": apple_date(when + 60) if (edits or unsent) else 0,
                    "date_retracted": apple_date(when + 60) if retracted else 0,
                    "message_summary_info": plistlib.dumps(info, fmt=plistlib.FMT_BINARY)
                    if info else None}
        keys = ", ".join(row)
        cursor = self.db.execute(f"INSERT INTO message ({keys}) VALUES "
                                 f"({', '.join('?' * len(row))})", tuple(row.values()))
        rowid = int(cursor.lastrowid or 0)
        if chat is not None:
            self.db.execute("INSERT INTO chat_message_join VALUES (?, ?, ?)",
                            (chat, rowid, row["date"]))
        for mime, filename in files:
            found = self.db.execute("INSERT INTO attachment (guid, filename, mime_type) VALUES "
                                    "(?, ?, ?)", (f"AT-{self.count}-{filename}", filename, mime))
            self.db.execute("INSERT INTO message_attachment_join VALUES (?, ?)",
                            (rowid, found.lastrowid))
        return rowid

    def close(self) -> None:
        self.db.commit()
        self.db.close()
