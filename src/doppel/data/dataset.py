"""The dataset folder contract: conversations.jsonl + manifest.json, versioned, checked on read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from doppel.errors import DoppelError

# 2: chats and people known by ids from the sources (sources/ids.py), labels kept across
# re-prepares; a version 1 dataset named chats and people by name and cannot be told apart
SCHEMA_VERSION = 2
CONVERSATIONS = "conversations.jsonl"
MANIFEST = "manifest.json"


@dataclass(slots=True)
class ConversationMessage:
    """One message in a conversation. Several in a row by one speaker (a burst) make one
    chatformat.ChatTurn, what the model sees."""

    speaker_id: str
    speaker: str
    time: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"speaker_id": self.speaker_id, "speaker": self.speaker, "time": self.time,
                "text": self.text}


@dataclass(slots=True)
class Conversation:
    id: str
    chat_id: str
    chat_name: str
    chat_type: str
    split: str  # "train" or "val"
    messages: list[ConversationMessage] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "chat": {"id": self.chat_id, "name": self.chat_name, "type": self.chat_type},
            "split": self.split,
            "messages": [m.to_json() for m in self.messages],
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Conversation:
        chat = row["chat"]
        return cls(
            id=row["id"], chat_id=chat["id"], chat_name=chat["name"], chat_type=chat["type"],
            split=row["split"], messages=[ConversationMessage(**m) for m in row["messages"]],
        )


@dataclass(slots=True)
class Dataset:
    """A prepared dataset folder: who "me" is, the speakers, and the conversations."""

    path: Path
    manifest: dict[str, Any]

    @property
    def me_id(self) -> str:
        return self.manifest["me"]["id"]

    @property
    def me_name(self) -> str:
        return self.manifest["me"]["name"]

    @property
    def speakers(self) -> dict[str, str]:
        """Speaker id -> display name, for every speaker with kept messages."""
        return {sid: s["name"] for sid, s in self.manifest["speakers"].items()}

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    def conversations(self, split: str | None = None) -> Iterator[Conversation]:
        """The conversations, without what the owner told doppel to forget (rows())."""
        for row in self.rows():
            if split is None or row["split"] == split:
                yield Conversation.from_json(row)

    def forgotten_texts(self) -> frozenset[str]:
        """The text of every forgotten message, read from conversations.jsonl (kept as
        prepared): what a store filled before the forget (the blind test's screens) must
        withhold, whatever conversation ids a later `prepare --force` gave. In memory only."""
        from doppel.data.forgotten import read_forgotten

        forgotten = read_forgotten(self.path)
        if not forgotten:
            return frozenset()
        return frozenset(message["text"] for row in self.rows(as_prepared=True)
                         if row["chat"]["id"] in forgotten.spans
                         for message in row["messages"]
                         if forgotten.hides(row["chat"]["id"], message["time"]))

    def rows(self, as_prepared: bool = False) -> Iterator[dict[str, Any]]:
        """Each conversation as conversations.jsonl holds it, in file order, without what the
        owner told doppel to forget (forgotten.py): every reader (memory, training, eval) goes
        through here; plain dicts, for a reader of every message that needs no objects (the
        memory index's units). `as_prepared`: with it (only to find what was forgotten)."""
        from doppel.data.forgotten import Forgotten, read_forgotten

        forgotten = Forgotten() if as_prepared else read_forgotten(self.path)
        with open(self.path / CONVERSATIONS, "rb") as lines:
            for line in lines:
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:  # what orjson refuses (a lone surrogate's escape)
                    row = json.loads(line)
                kept = forgotten.strip(row) if forgotten else row
                if kept is not None:
                    yield kept


def load_dataset(path: Path) -> Dataset:
    """Open a dataset folder, with a clear error for a missing, foreign or outdated one."""
    path = Path(path)
    if not path.is_dir():
        raise DoppelError(f"dataset folder {path} does not exist; create it with `doppel prepare`")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file() or not (path / CONVERSATIONS).is_file():
        raise DoppelError(
            f"{path} is not a doppel dataset folder (needs {MANIFEST} and {CONVERSATIONS}); "
            "create it with `doppel prepare`"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DoppelError(
            f"{manifest_path} is not valid JSON ({error}); run `doppel prepare` again") from None
    check_version(path, manifest)
    return Dataset(path=path, manifest=manifest)


def check_version(path: Path, manifest: Any) -> None:
    """One line for a dataset of another schema: version 1 knew people by name (no migration:
    only the export can tell two "Sam"s apart), so it is prepared again."""
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if version == SCHEMA_VERSION:
        return
    why = " (it knows chats and people by name, not by id)" if version == 1 else ""
    raise DoppelError(f"{path} has dataset schema version {version!r}{why}, this doppel reads "
                      f"version {SCHEMA_VERSION}; run `doppel prepare` again with this version")


_SURROGATE = re.compile("[\ud800-\udfff]")


def repair_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings replaced by U+FFFD (valid UTF-8)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [repair_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {key: repair_surrogates(item) for key, item in value.items()}
    return value


class DatasetWriter:
    """Writes a dataset folder's files into `folder` (a temporary one from atomic_dir)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lines = open(self.folder / CONVERSATIONS, "wb")  # noqa: SIM115

    def write(self, conversation: Conversation) -> None:
        self.write_json(conversation.to_json())

    def write_json(self, row: dict[str, Any]) -> None:
        """Write a conversation already in Conversation.to_json's shape (the fast path).

        orjson encodes several times faster than json, and refuses a lone surrogate (half an
        emoji in an old export; tokenizers refuse it too): that row is repaired and written.
        """
        try:
            line = orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            line = orjson.dumps(repair_surrogates(row), option=orjson.OPT_APPEND_NEWLINE)
        self._lines.write(line)

    def write_line(self, line: bytes) -> None:
        """Write one conversation already encoded as a line of conversations.jsonl."""
        self._lines.write(line)

    def finish(self, manifest: dict[str, Any]) -> None:
        """Close conversations.jsonl and write manifest.json with this schema version."""
        self._lines.close()
        manifest = {"schema_version": SCHEMA_VERSION, **manifest}
        text = json.dumps(repair_surrogates(manifest), ensure_ascii=False, indent=1) + "\n"
        (self.folder / MANIFEST).write_text(text, encoding="utf-8")

    def close(self) -> None:
        self._lines.close()
