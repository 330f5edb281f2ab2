"""Signal, Discord (DiscordChatExporter) and Meta (Messenger, Instagram) readers, and detection by
content: every source is found from what its file holds, whatever the file is called."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from doppel.errors import DoppelError
from doppel.sources import SOURCES, open_export
from doppel.sources.meta import repair
from test_reader_bad_input import fails

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is not present")


def rows(path: Path) -> tuple[object, list[tuple]]:
    reader = open_export(path)
    out = [(datetime.fromtimestamp(m.time, UTC).strftime("%Y-%m-%d %H:%M:%S"), m.speaker_id,
            m.speaker, m.kind, m.drop, m.media, m.text) for m in reader.messages()]
    return reader, out


@needs_shared
def test_signal_fixture() -> None:
    reader, got = rows(SHARED / "signal" / "chat-miner__test_export.txt")
    assert reader.source == "signal"
    chat = reader.chats[0].id  # named by its first lines, not its file name (sources/ids.py)
    assert chat.startswith("signal:") and "chat-miner" not in chat
    assert got == [  # a name is an id only inside its chat
        ("2019-12-24 12:23:00", f"{chat}/Jane Doe", "Jane Doe", "message", None, None,
         "Hello John!"),
        ("2020-01-17 21:49:00", f"{chat}/John Doe", "John Doe", "message", None, None,
         "Hello\nJane!")]


@needs_shared
def test_instagram_fixture_minimal_meta_json() -> None:
    reader, got = rows(SHARED / "instagram" / "chat-miner__test_export.json")
    assert reader.source == "instagram"
    assert [(r[0], r[2], r[6]) for r in got] == [  # oldest first, though the file is newest first
        ("2019-12-24 11:23:00", "Jane Doe", "Hello John!"),
        ("2020-01-17 20:49:00", "John Doe", "Hello Jane!")]


def test_discord_dm_export() -> None:
    reader, got = rows(FIXTURES / "discord" / "dm-sam.json")
    assert reader.source == "discord"
    assert [(c.id, c.name, c.type) for c in reader.chats] == [
        ("discord:5001", "Sam", "personal_chat")]
    spoken = [(r[0], r[2], r[5], r[6]) for r in got if r[4] is None]
    assert spoken == [  # times are real UTC: the export's +01:00 offset is applied
        ("2024-03-12 21:15:03", "Sam", None, "hey @Alex, you there?"),  # <@111> -> nickname
        ("2024-03-12 21:15:09", "Alex", None, "yes! :party:"),  # a reply; custom emoji
        ("2024-03-12 21:16:00", "Sam", "[photo]", ""),
        ("2024-03-12 21:16:30", "Alex", "[sticker]", ""),
        ("2024-03-12 21:17:00", "Sam", "[link]", ""),
        ("2024-03-13 08:01:00", "Alex", None, "morning Sam"),  # listed twice, read once
        ("2024-03-13 08:03:00", "Sam", None, "morning!\nsecond line")]
    assert [r[4] for r in got if r[4]] == ["service", "service", "service", "bot", "service"]
    assert [r[3] for r in got].count("boundary") == 1  # the call ends a conversation


def test_discord_folder_of_channels() -> None:
    reader, got = rows(FIXTURES / "discord")
    assert [(c.name, c.type) for c in reader.chats] == [("Sam", "personal_chat"),
                                                        ("Book Club #general", "group")]
    assert ("2024-03-10 10:02:00", "discord:111", "Alex", "message", None, None,
            "thanks @Sam") in got


def test_meta_folder_both_schemas_and_mojibake() -> None:
    reader, got = rows(FIXTURES / "meta" / "facebook-alex")
    assert reader.source == "messenger"
    assert [c.name for c in reader.chats] == ["Anna Müller", "Bob Stone"]
    spoken = [(r[0], r[2], r[5], r[6]) for r in got if r[4] is None]
    assert spoken == [
        ("2024-03-12 22:15:00", "Anna Müller", None, "Grüße aus Zürich 😱"),
        ("2024-03-12 22:16:00", "Alex Doe", None, "hi Anna!"),  # message_2 is older
        ("2024-03-12 22:17:00", "Alex Doe", None, "schön 👍"),
        ("2024-03-12 22:18:00", "Anna Müller", "[photo]", ""),
        ("2018-03-02 14:13:20", "Alex Doe", None, "yo Bob"),  # 2018: seconds, plain names
        ("2018-03-02 14:15:00", "Bob Stone", None, "see you 2018")]
    assert sorted(r[4] for r in got if r[4]) == ["service", "service", "service", "unsent"]


def test_meta_zip_is_instagram_when_its_tree_says_so(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    root = FIXTURES / "meta" / "instagram-alex"
    with zipfile.ZipFile(archive, "w") as out:
        for file in root.rglob("*.json"):
            out.write(file, file.relative_to(root).as_posix())
    reader, got = rows(archive)
    assert reader.source == "instagram" and reader.layout == "zip"
    assert [(r[2], r[5], r[6]) for r in got] == [("kai.ig", "[link]", ""),
                                                 ("alex.doe", None, "nice pic")]


def test_meta_owner_is_the_one_person_in_every_thread(tmp_path: Path) -> None:
    inbox = tmp_path / "messages" / "inbox"
    for friend in ("Anna", "Bob"):
        (inbox / friend).mkdir(parents=True)
        (inbox / friend / "message_1.json").write_text(json.dumps({
            "participants": [{"name": friend}, {"name": "Alex"}], "thread_type": "Regular",
            "messages": [{"sender_name": "Alex", "timestamp_ms": 1, "content": "hi"}]}))
    reader = open_export(tmp_path)
    list(reader.messages())
    assert reader.owner == ("messenger:Alex", "Alex")


@pytest.mark.parametrize(("text", "fixed"), [
    ("Ã¼", "ü"), ("ð\x9f\x98\xb1", "😱"), ("plain", "plain"), ("€ already fine", "€ already fine")])
def test_mojibake_repair(text: str, fixed: str) -> None:
    assert repair(text) == fixed


def test_detection_is_by_content_not_by_name(tmp_path: Path) -> None:
    """Each source's file, renamed to something meaningless, is still read by its reader."""
    cases = {
        "whatsapp": FIXTURES / "whatsapp" / "android-de.txt",
        "discord": FIXTURES / "discord" / "dm-sam.json",
        "messenger": FIXTURES / "meta" / "facebook-alex" / "messages" / "inbox" / "bobstone_99"
        / "message.json",
        "wechat": FIXTURES / "chatlab" / "wechat-group.json",
        "qq": FIXTURES / "chatlab" / "qq-private.jsonl",
        "line": FIXTURES / "line" / "ja-group.txt",
        "kakaotalk": FIXTURES / "kakaotalk" / "phone-en-minji.txt",
    }
    if SHARED.is_dir():
        cases["signal"] = SHARED / "signal" / "chat-miner__test_export.txt"
        cases["telegram"] = SHARED / "telegram" / "chat_analytics_dm.json"
        cases["imessage"] = SHARED / "imessage" / "imessage_chat.db"
    for number, (source, path) in enumerate(cases.items()):
        renamed = tmp_path / f"export-{number}.dat"
        shutil.copy(path, renamed)
        assert open_export(renamed).source == source
    assert {s.name for s in SOURCES} == {"telegram", "whatsapp", "signal", "discord", "meta",
                                         "imessage", "chatlab", "line", "kakaotalk"}
    resaved = tmp_path / "sorted-keys.json"  # another tool re-saved it with its keys sorted
    resaved.write_text(json.dumps(json.loads(cases["discord"].read_text("utf-8")),
                                  sort_keys=True), encoding="utf-8")
    assert open_export(resaved).source == "discord"


@pytest.mark.parametrize(("name", "content", "words"), [
    ("other.json", json.dumps([{"ID": 1, "Timestamp": "2024-01-01", "Contents": "hi"}]),
     ("a JSON list", "not a Telegram export", "WhatsApp, Signal, Discord")),
    ("meta.json", json.dumps({"participants": [{"name": "A"}], "title": "x"}),
     ("holds no 'messages' list",)),
    ("dce.json", '{"guild": {"id": "1"}, "channel": {"id": "2"}, "messages": 5}',
     ("not a DiscordChatExporter JSON export",)),
    ("dce-cut.json", '{"guild": {"id": "1"}, "channel": {"id": "2"}, "messages": [{"id": "1", ',
     ("is not valid JSON",)),
    ("nested.json", '{"guild": 1, "messages": ' + "[" * 5000 + "]" * 5000 + "}",
     ("is not valid JSON",)),
])
def test_foreign_or_broken_json_is_one_line(tmp_path: Path, name: str, content: str,
                                            words: tuple[str, ...]) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    fails(path, *words)


def test_unknown_folder_and_zip_name_the_supported_sources(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here", encoding="utf-8")
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        archive.writestr("a.jpg", b"\xff\xd8")
    for path in (tmp_path, tmp_path / "photos.zip"):
        with pytest.raises(DoppelError, match=r"doppel reads: WhatsApp .*Telegram Desktop JSON"):
            open_export(path)
