"""Read Apple Messages' SQLite database: macOS `~/Library/Messages/chat.db` or an iPhone backup's
`sms.db` (the same schema), opened read-only since Messages may hold it open.

Each chat is read with one query, oldest first, in pages (`fetchmany`), so memory stays flat on a
million messages. Columns older macOS versions lack read as NULL. A body comes from `text`, else
from `attributedBody` (typedstream.py); an edited message is its final version (the edit history
in `message_summary_info`), an unsent one is left out, as are tapbacks, renames and joins
(`item_type`) and U+FFFC (an attachment's place in the text); attachments become media markers.
Dates are nanoseconds (macOS 10.13 on) or seconds since 2001-01-01 UTC. The owner has no name in
the database: their messages (`is_from_me`) are "Me"; everyone else is their handle (phone
number or email), kept out of speaker ids by a hash, since ids are not masked and names are.
A blob whose length field says more than it holds is read to its end marker (typedstream.salvage)
or, with nothing there, is an `unreadable` message: one odd row never refuses the database. A
database in a read-only folder is read from a private copy with its -wal and -shm.
"""

from __future__ import annotations

import hashlib
import plistlib
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doppel.errors import DoppelError
from doppel.sources.ids import key
from doppel.sources.probe import Probe
from doppel.sources.records import Chat, Message, ReadSettings
from doppel.sources.tally import Tally
from doppel.sources.typedstream import Truncated, body_text, salvage

__all__ = ["IMessageExport", "claims", "open_reader"]

SOURCE = "imessage"
SQLITE = b"SQLite format 3\x00"
DB_SUFFIXES = (".db", ".sqlite", ".sqlitedb")
PAGE = 2000  # rows fetched at a time
BUSY_SECONDS = 5.0  # how long to wait for Messages to release a write lock
EPOCH_2001 = 978307200
ME = (f"{SOURCE}:me", "Me")
COLUMNS = ("ROWID", "text", "attributedBody", "handle_id", "is_from_me", "date",
           "associated_message_type", "item_type", "date_edited", "date_retracted",
           "is_audio_message", "cache_has_attachments")
_PHONE = re.compile(r"\+?[\d\s().-]{6,}")
# a reaction sent as text by an older phone or an Android one: 'Loved “hey”'
_TEXT_TAPBACK = re.compile(r"^(?:Liked|Loved|Disliked|Laughed at|Emphasized|Questioned|"
                           r"Removed an? .{1,20} from) “.*”$", re.S)
_GROUP, _ONE = 43, 45  # chat.style


def claims(seen: Probe) -> bool:
    """A SQLite file; or a binary .db file that is not one (an encrypted backup), so that it gets
    this reader's precise error rather than "not an export"."""
    if seen.kind != "file":
        return False
    return seen.raw.startswith(SQLITE) or (
        seen.path.suffix.lower() in DB_SUFFIXES and b"\x00" in seen.raw[:4096])


def open_reader(path: Path, settings: ReadSettings) -> IMessageExport:
    return IMessageExport(path)


def apple_time(value: Any) -> float:
    """Unix seconds from a Messages date: nanoseconds since 2001 (seconds on old databases)."""
    if not isinstance(value, int | float) or value != value:
        return 0.0
    seconds = value / 1e9 if abs(value) > 1e14 else float(value)
    return seconds + EPOCH_2001 if abs(seconds) < 1e11 else 0.0


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _hashed(kind: str, handle: str) -> str:
    return f"{SOURCE}:{kind}-{hashlib.sha256(handle.encode()).hexdigest()[:12]}"


def handle_speaker(handle: str) -> tuple[str, str]:
    """(speaker id, name) for a handle: a phone number or an email is hashed in the id."""
    handle = handle.strip()
    if _PHONE.fullmatch(handle):
        return _hashed("phone", handle), handle
    if "@" in handle:
        return _hashed("email", handle), handle
    return f"{SOURCE}:{handle}", handle


def _open(path: Path) -> sqlite3.Connection:
    """A read-only connection that has read the schema (so a bad file fails here)."""
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_SECONDS)
    db.text_factory = _text  # one badly encoded row must not stop the read
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        db.close()
        raise
    return db


def _problem(path: Path, bad: Exception) -> DoppelError:
    """The one line for what SQLite said about the file."""
    said = str(bad).lower()
    if "locked" in said or "busy" in said:
        return DoppelError(f"{path} is locked by another program (Messages is writing to it); "
                           "quit Messages, or copy the file (with its -wal file) and prepare the "
                           "copy")
    if "not a database" in said or "encrypted" in said:
        return DoppelError(f"{path} is not a readable SQLite database: it is encrypted (an "
                           "encrypted iPhone backup must be decrypted first) or damaged")
    if "malformed" in said or "corrupt" in said:
        return DoppelError(f"{path} is damaged (SQLite: {bad}); copy the database again")
    if "unable to open" in said or "authoriz" in said or isinstance(bad, PermissionError):
        return DoppelError(f"cannot open {path} ({bad}); on a Mac give your terminal Full Disk "
                           "Access (System Settings > Privacy & Security) or copy chat.db "
                           "somewhere else first")
    return DoppelError(f"cannot read {path} as a Messages database (SQLite: {bad})")


class IMessageExport:
    """One Messages database; `messages()` streams every chat in turn."""

    source = SOURCE
    layout = "sqlite"

    def __init__(self, path: Path, settings: ReadSettings | None = None) -> None:
        self.path = Path(path)
        self.size_bytes = self.path.stat().st_size
        self.bytes_read = 0
        self.owner: tuple[str, str] | None = ME
        self.chats: list[Chat] = []
        self.unknown: Counter[str] = Counter()
        self.tally = Tally()  # every row is a message: nothing to count but for uniformity
        self.db = self._connect()
        try:
            self.tables = {row[0] for row in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"message", "handle"} <= self.tables:
                raise DoppelError(f"{self.path} is a SQLite database but not a Messages "
                                  "database (no message and handle tables); pass "
                                  "~/Library/Messages/chat.db or an iPhone backup's sms.db")
            self.columns = self._columns("message")
            self.handles = {rowid: handle_speaker(str(name)) for rowid, name in self.db.execute(
                "SELECT ROWID, id FROM handle") if name is not None}
            self.total = self.db.execute("SELECT count(*) FROM message").fetchone()[0] or 1
            self.key = self._key()
        except sqlite3.Error as bad:
            raise _problem(self.path, bad) from None

    def _key(self) -> str:
        """What names this database apart from its path (ids.py), for the rare chat without a
        guid and handle without a row: its oldest messages' guids, which a newer copy keeps."""
        column = "guid" if "guid" in self.columns else "date"
        rows = self.db.execute(f"SELECT {column} FROM message ORDER BY ROWID LIMIT 4")
        return key(row[0] for row in rows)

    def _connect(self) -> sqlite3.Connection:
        try:
            return _open(self.path)
        except sqlite3.OperationalError as bad:
            if "unable to open" not in str(bad):
                raise _problem(self.path, bad) from None
        except sqlite3.Error as bad:
            raise _problem(self.path, bad) from None
        # a read-only folder: SQLite cannot make the -shm file that reading the -wal needs, and
        # the newest messages may be only in the -wal; so read a private copy of the files
        try:
            copy = self._private_copy()
            return _open(copy)
        except (OSError, sqlite3.Error) as bad:
            raise _problem(self.path, bad) from None

    def _private_copy(self) -> Path:
        """The database with its -wal and -shm, copied into an owner-only temporary folder that
        is removed with this reader (tempfile makes the folder 0700)."""
        self._copy = tempfile.TemporaryDirectory(prefix="doppel-imessage-")
        target = Path(self._copy.name) / "chat.db"
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if suffix == "" or source.is_file():
                shutil.copyfile(source, f"{target}{suffix}")
        return target

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}

    def _select(self) -> str:
        """The message columns (NULL for those this schema lacks), edit history only for edited
        rows, and a message's attachments (mime, uti, path; units and records split by the ASCII
        separators) when it has any."""
        have = self.columns
        parts = [f"m.{name}" if name in have else f"NULL AS {name}" for name in COLUMNS]
        parts.append("CASE WHEN m.date_edited THEN m.message_summary_info END"
                     if {"date_edited", "message_summary_info"} <= have else "NULL")
        if {"attachment", "message_attachment_join"} <= self.tables:
            found = self._columns("attachment")
            fields = " || char(31) || ".join(f"coalesce(a.{c}, '')" if c in found else "''"
                                        for c in ("mime_type", "uti", "filename"))
            when = "m.cache_has_attachments" if "cache_has_attachments" in have else "1"
            parts.append(f"CASE WHEN {when} THEN (SELECT group_concat({fields}, char(30)) FROM "
                         "message_attachment_join x JOIN attachment a ON a.ROWID = "
                         "x.attachment_id WHERE x.message_id = m.ROWID) END")
        else:
            parts.append("NULL")
        return "SELECT " + ", ".join(parts)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        try:
            cursor = self.db.execute(sql, args)
            while page := cursor.fetchmany(PAGE):
                yield from page
        except sqlite3.Error as bad:
            raise _problem(self.path, bad) from None

    def messages(self) -> Iterator[Message]:
        self.chats, self.bytes_read, done = [], 0, 0
        for chat, sql, args in self._plan(self._select()):
            current, handle = chat, object()
            for row in self._rows(sql, args):
                if chat is None and row[3] != handle:  # read by handle: one chat each
                    current, handle = self._handle_chat(row[3]), row[3]
                if not self.chats or self.chats[-1] is not current:
                    self.chats.append(current)
                yield self._message(current, row)
                done += 1
                if not done % PAGE:
                    self.bytes_read = self.size_bytes * done // self.total
        self.bytes_read = self.size_bytes

    def _plan(self, select: str) -> Iterator[tuple[Chat | None, str, tuple[Any, ...]]]:
        """(the chat, or None for one chat per handle; its query; args) for each part."""
        by_handle = f"{select} FROM message m {{}} ORDER BY m.handle_id, m.date, m.ROWID"
        if "chat_message_join" not in self.tables:
            yield None, by_handle.format(""), ()
            return
        for chat_id, chat in self._chat_list():
            yield chat, (f"{select} FROM chat_message_join j JOIN message m ON m.ROWID = "
                         "j.message_id WHERE j.chat_id = ? ORDER BY m.date, m.ROWID"), (chat_id,)
        yield None, by_handle.format("WHERE NOT EXISTS (SELECT 1 FROM chat_message_join j "
                                     "WHERE j.message_id = m.ROWID)"), ()

    def _chat_list(self) -> list[tuple[int, Chat]]:
        try:
            ids = [row[0] for row in self.db.execute(
                "SELECT DISTINCT chat_id FROM chat_message_join WHERE typeof(chat_id) = "
                "'integer' ORDER BY chat_id")]
            info: dict[int, tuple[Any, ...]] = {}
            if "chat" in self.tables:
                have = self._columns("chat")
                cols = [c if c in have else "NULL" for c in ("chat_identifier", "display_name",
                                                             "style", "guid")]
                info = {row[0]: row[1:] for row in self.db.execute(
                    f"SELECT ROWID, {', '.join(cols)} FROM chat")}
            members: dict[int, list[str]] = {}
            if "chat_handle_join" in self.tables:
                for chat_id, handle in self.db.execute(
                        "SELECT chat_id, handle_id FROM chat_handle_join ORDER BY rowid"):
                    if handle in self.handles:
                        members.setdefault(chat_id, []).append(self.handles[handle][1])
            return [(chat_id, self._chat(chat_id, info.get(chat_id),
                                         members.get(chat_id) or self._writers(chat_id)))
                    for chat_id in ids]
        except sqlite3.Error as bad:
            raise _problem(self.path, bad) from None

    def _writers(self, chat_id: int) -> list[str]:
        """The handles that wrote in a chat the database lists no members for (a few)."""
        rows = self.db.execute("SELECT DISTINCT m.handle_id FROM chat_message_join j JOIN "
                               "message m ON m.ROWID = j.message_id WHERE j.chat_id = ? AND "
                               "NOT m.is_from_me LIMIT 8", (chat_id,))
        return [self.handles[h][1] for (h,) in rows if h in self.handles]

    def _chat(self, chat_id: int, info: tuple[Any, ...] | None, members: list[str]) -> Chat:
        identifier, title, style, guid = info or (None, None, None, None)
        group = style == _GROUP or (style != _ONE and len(members) > 1)
        name = str(title or "") or ", ".join(members) or str(identifier or "") or f"chat {chat_id}"
        # the guid names the chat on every device (ids.py); a ROWID only within this database
        ident = f"chat-{key([guid])}" if guid else f"{self.key}:chat{chat_id}"
        return Chat(f"{SOURCE}:{ident}", name,
                    "private_group" if group else "personal_chat", SOURCE)

    def _handle_chat(self, handle: Any) -> Chat:
        """A chat for messages no chat lists (or a database without chats): one per handle."""
        if handle in self.handles:  # the chat with that handle, as its speaker id names it
            sid, name = self.handles[handle]
            return Chat(f"{SOURCE}:handle:{sid.removeprefix(SOURCE + ':')}", name,
                        "personal_chat", SOURCE)
        return Chat(f"{SOURCE}:{self.key}:handle{handle}", f"handle {handle}", "personal_chat",
                    SOURCE)

    def _speaker(self, row: tuple[Any, ...]) -> tuple[str | None, str | None]:
        if row[4]:
            return ME
        handle = row[3]
        if handle in self.handles:
            return self.handles[handle]
        if handle in (None, 0):
            return None, None
        handle = str(handle).strip()  # a row the handle table lacks: only this database's
        return f"{SOURCE}:{self.key}:handle-{handle}", f"handle {handle}"

    def _message(self, chat: Chat, row: tuple[Any, ...]) -> Message:
        (rowid, text, blob, _handle, _mine, date, reaction, item, edited, retracted, audio,
         _has, summary, files) = row
        sid, name = self._speaker(row)
        number = rowid if isinstance(rowid, int) else 0
        when = apple_time(date)
        if isinstance(reaction, int) and 2000 <= reaction < 4000:
            return Message(chat, number, when, sid, name, "", drop="reaction")
        if item:
            return Message(chat, number, when, sid, name, "", drop="service")
        if retracted:
            return Message(chat, number, when, sid, name, "", drop="unsent")
        body = self._body(number, text, blob)
        if body is None:
            return Message(chat, number, when, sid, name, "", drop="unreadable")
        if edited:
            history = _edits(summary)
            if history is not None and not history and not body.strip():
                return Message(chat, number, when, sid, name, "", drop="unsent")
            body = history[-1] if history else body
        body = body.replace("\ufffc", "").strip()
        if _TEXT_TAPBACK.match(body):
            return Message(chat, number, when, sid, name, "", drop="reaction")
        media, path = _attachments(files, bool(audio))
        return Message(chat, number, when, sid, name, body, media=media, media_path=path)

    def _body(self, rowid: int, text: Any, blob: Any) -> str | None:
        """The message's text; None when its attributedBody cannot be read at all."""
        if isinstance(text, str):
            return text
        if not isinstance(blob, bytes):
            return ""
        try:
            decoded = body_text(blob)
        except Truncated:  # one odd blob costs at most its message, never the database
            decoded = salvage(blob)
            self.unknown["attributedBody with a wrong length" if decoded is not None else
                         "attributedBody unreadable"] += 1
            if decoded is None:
                return None
        if decoded is None:
            self.unknown["attributedBody without a string"] += 1
            return ""
        return decoded


def _edits(summary: Any) -> list[str] | None:
    """The versions of an edited message's first part, oldest first ([] when the history says
    the part was unsent); None when there is no history to read."""
    if not isinstance(summary, bytes):
        return None
    try:
        info = plistlib.loads(summary)
    except Exception:  # plistlib raises many types on a damaged blob
        return None
    if not isinstance(info, dict):
        return None
    versions = (info.get("ec") or {}).get("0") if isinstance(info.get("ec"), dict) else None
    if not isinstance(versions, list) or not versions:
        return [] if info.get("rp") else None
    out = []
    for version in versions:
        blob = version.get("t") if isinstance(version, dict) else None
        try:
            text = body_text(blob) if isinstance(blob, bytes) else None
        except Truncated:
            text = None
        if text is not None:
            out.append(text)
    return out or None


def _attachments(files: Any, audio: bool) -> tuple[str | None, str | None]:
    """(media markers, the voice message's path under the database's folder) of a message."""
    if not isinstance(files, str) or not files:
        return None, None
    marks, voice = [], None
    for line in files.split("\x1e"):
        mime, uti, filename = [*line.split("\x1f", 2), "", ""][:3]
        mark = _marker(mime.lower(), uti.lower(), filename.lower(), audio)
        marks.append(mark)
        if mark == "[voice]" and voice is None and filename:
            voice = _relative(filename)
    return " ".join(dict.fromkeys(marks)) or None, voice


def _marker(mime: str, uti: str, filename: str, audio: bool) -> str:
    if mime == "image/gif":
        return "[gif]"
    if mime.startswith("image/") or uti.startswith("public.jpeg") or uti == "public.heic":
        return "[photo]"
    if mime.startswith("video/"):
        return "[video]"
    if mime.startswith("audio/") or filename.endswith(".caf"):
        return "[voice]" if audio or filename.endswith(".caf") else "[audio]"
    if "vcard" in mime:
        return "[contact]"
    return "[file]"


def _relative(filename: str) -> str:
    """'~/Library/Messages/Attachments/ab/11/X/a.caf' -> 'Attachments/ab/11/X/a.caf' (iOS:
    '/var/mobile/Library/SMS/Attachments/...'): the path under the database's folder."""
    at = filename.find("Attachments/")
    return filename[at:] if at >= 0 else filename
