"""A stand-in for an export reader, fed with Message records built in the test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from doppel.sources.records import Chat, Message

ME = ("user1", "Alex")
T0 = 1_700_000_000.0
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0


@dataclass
class FakeExport:
    """Quacks like doppel.sources.telegram.TelegramExport for the data pipeline."""

    records: list[Message]
    owner: tuple[str, str] | None = ME
    layout: str = "full"
    path: Path | None = None
    bytes_read: int = 0
    size_bytes: int = 1000
    chats: list[Chat] = field(default_factory=list)

    def messages(self):
        yield from self.records


class ChatBuilder:
    """Appends messages to one chat with a running clock: `say(who, text, after=seconds)`."""

    def __init__(self, records: list[Message], chat_id: str, name: str,
                 type: str = "personal_chat", start: float = T0) -> None:
        self.records = records
        self.chat = Chat(chat_id, name, type)
        self.time = start

    def say(self, who: tuple[str, str], text: str, after: float = 30.0, **extra) -> ChatBuilder:
        self.time += after
        self.records.append(Message(self.chat, len(self.records), self.time, who[0], who[1],
                                    text, **extra))
        return self

    def boundary(self, after: float = 30.0) -> ChatBuilder:
        self.time += after
        self.records.append(Message(self.chat, len(self.records), self.time, None, None, "",
                                    kind="boundary"))
        return self

    def exchange(self, friend: tuple[str, str], rounds: int, gap: float = DAY) -> ChatBuilder:
        """`rounds` conversations of friend + me, `gap` apart."""
        for index in range(rounds):
            self.say(friend, f"hey {index}", after=gap if index else 30.0)
            self.say(ME, f"hi {index}")
        return self


def export_file(tmp_path: Path) -> Path:
    """A file to stand for the export on disk (fingerprint and size read it)."""
    path = tmp_path / "result.json"
    path.write_text('{"fake": true}', encoding="utf-8")
    return path
