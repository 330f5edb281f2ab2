"""The Telegram reader on real export fixtures and on small exports written in the test."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from doppel.sources import jsonstream, open_export
from doppel.sources.jsonstream import EscapeFixer
from doppel.sources.telegram import TelegramExport, normalize_peer_id

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "telegram"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []
needs_fixtures = pytest.mark.skipif(not FIXTURE_FILES, reason=f"no Telegram fixtures in {FIXTURES}")


def write(path: Path, export: dict | str | bytes) -> Path:
    if isinstance(export, dict):
        export = json.dumps(export, ensure_ascii=False, indent=1)
    path.write_bytes(export.encode() if isinstance(export, str) else export)
    return path


def chat(*messages: dict, **meta) -> dict:
    return {"name": "Sam", "type": "personal_chat", "id": 42, **meta, "messages": list(messages)}


def msg(i: int, text="hi", **extra) -> dict:
    return {"id": i, "type": "message", "date": "2023-01-01T10:00:00",
            "date_unixtime": str(1672567200 + i), "from": "Sam", "from_id": "user42",
            "text": text, **extra}


def read(path: Path) -> list:
    return list(TelegramExport(path).messages())


@needs_fixtures
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_every_fixture_reads_and_text_joins_exactly(path: Path) -> None:
    export = open_export(path)
    messages = list(export.messages())
    raw = json.loads(path.read_text(encoding="utf-8"))["messages"]
    assert export.layout == "single" and export.owner is None and len(export.chats) == 1
    assert [m.id for m in messages] == [r["id"] for r in raw]
    for message, source in zip(messages, raw, strict=True):
        parts = source.get("text", "")
        expected = parts if isinstance(parts, str) else "".join(
            p if isinstance(p, str) else p["text"] for p in parts)
        assert message.text == expected
        if "text_entities" in source:  # both spellings of the text agree
            assert "".join(e["text"] for e in source["text_entities"]) == expected
    assert export.bytes_read == export.size_bytes


@needs_fixtures
def test_same_channel_exported_in_2020_and_2021_gives_same_ids_and_text() -> None:
    old = read(FIXTURES / "tg2md_channel_2020-11.json")  # shifted int ids, no date_unixtime
    new = read(FIXTURES / "tg2md_channel_2021.json")  # "channel..." strings
    by_id = {m.id: m for m in new}
    assert old[0].chat.id == new[0].chat.id == "channel1292077344"
    for m in old:
        twin = by_id[m.id]
        assert (m.speaker_id, m.text, m.media, m.drop, m.time) == (
            twin.speaker_id, twin.text, twin.media, twin.drop, twin.time)
    assert {m.drop for m in old} == {"service", "channel_post"}  # a channel's posts: no person


@needs_fixtures
def test_fixture_drop_reasons_media_and_boundaries() -> None:
    saved = {m.id: m for m in read(FIXTURES / "tcp_saved_messages.json")}
    assert saved[176390].drop == "forward" and saved[226106].drop == "via_bot"
    assert saved[183290].drop is None and saved[183290].chat.name == "Saved Messages"
    assert saved[278329].media == "🤭" and saved[278329].text == "DoNotChange"
    assert saved[217584].media == "[voice 0:09]" and saved[207958].media == "[gif]"
    assert saved[5].media == "[poll: Poll question]" and saved[5].drop is None
    assert saved[4].drop == "service" and saved[4].kind == "message"
    dm = read(FIXTURES / "chat_analytics_dm.json")
    assert dm[-1].kind == "boundary" and dm[-1].drop == "service"  # phone_call
    assert dm[5].media == "[photo]" and dm[5].text == "" and dm[5].drop is None
    group = read(FIXTURES / "tcp_migrated_supergroup.json")
    assert [m.id for m in group] == [-999678450, -999678449, -999675685, 1]


@pytest.mark.parametrize(("raw", "kind", "expected"), [
    (123, "user", "user123"),  # before Oct 2020: bare user id
    (2**32 + 123, "user", "user123"),  # Oct 2020 - Apr 2021: shifted
    (2**33 + 123, "user", "channel123"),
    (2**33 + 123, "chat", "chat123"),
    ("user123", "user", "user123"),  # since Apr 2021
    ("channel123", "user", "channel123"),
    ("chat123", "user", "chat123"),
    ("123", "chat", "chat123"),
    (-123, "chat", "chat123"),  # Bot API style negative ids
    (-1001234567890, "channel", "channel1234567890"),
    (None, "user", None),
])
def test_peer_ids_normalise_across_eras(raw, kind, expected) -> None:
    assert normalize_peer_id(raw, kind) == expected


def test_modern_chat_ids_above_2_32_stay_bare(tmp_path: Path) -> None:
    big = 6_000_000_000  # a 2023 user id: bare, though inside the old shifted range
    modern = chat(msg(1), id=big)
    assert read(write(tmp_path / "m.json", modern))[0].chat.id == f"user{big}"
    legacy = chat({**msg(1), "from_id": 2**32 + 42}, id=2**32 + 42)
    got = read(write(tmp_path / "l.json", legacy))[0]
    assert got.chat.id == got.speaker_id == "user42"


def test_times_edited_sentinel_and_missing_unixtime(tmp_path: Path) -> None:
    old = {"id": 1, "type": "message", "date": "2019-03-01T10:00:00",
           "edited": "1970-01-01T03:00:00", "from": "Sam", "from_id": 42, "text": "a"}
    both = {**msg(2), "date": "2023-01-01T10:00:00", "date_unixtime": "1672567300"}
    undated = {"id": 3, "type": "message", "from": "Sam", "from_id": "user42", "text": "b"}
    gap = {**old, "id": 4, "date": "2019-03-03T10:00:00"}
    got = read(write(tmp_path / "t.json", chat(old, both, undated, gap)))
    assert got[0].time == 1551434400.0  # the date read as UTC, the 1970 `edited` ignored
    assert got[1].time == 1672567300.0  # date_unixtime wins over date
    assert got[2].time == got[1].time  # no date at all: the previous message's time
    assert got[3].time - got[0].time == 2 * 86400  # whole days count


def test_full_export_owner_left_chats_deduplicated(tmp_path: Path) -> None:
    me = {"user_id": 7, "first_name": "Alex", "last_name": "Doe", "phone_number": "+1 555"}
    friend = chat(msg(1), msg(2, from_id="user7", **{"from": "Alex Doe"}))
    group = chat({**msg(1), "from_id": "channel9"}, name="Club", type="private_supergroup", id=9)
    export = {"about": "x", "personal_information": me, "contacts": {"list": [{"a": 1}]},
              "chats": {"about": "y", "list": [friend, group]},
              "left_chats": {"about": "z", "list": [friend, chat(msg(5), type="weird", id=5)]}}
    reader = TelegramExport(write(tmp_path / "result.json", export))
    assert reader.layout == "full" and reader.owner == ("user7", "Alex Doe")
    got = list(reader.messages())
    assert [(m.chat.id, m.id) for m in got] == [("user42", 1), ("user42", 2), ("channel9", 1),
                                                ("chat5", 5)]  # an unknown type reads as a group
    assert [c.id for c in reader.chats] == ["user42", "channel9", "chat5"]
    assert got[2].drop == "channel_post"  # an anonymous admin in a group
    assert got[3].chat.type == "unknown" and reader.unknown["chat type weird"] == 1
    assert list(reader.messages()) == got and reader.unknown["chat type weird"] == 1  # re-readable
    assert TelegramExport(tmp_path).layout == "full"  # a folder holding result.json


def test_drop_reasons_media_markers_and_pii(tmp_path: Path) -> None:
    entities = [{"type": "plain", "text": "call "}, {"type": "phone", "text": "+1 555 0101"},
                {"type": "plain", "text": " or "}, {"type": "email", "text": "a@b.c"}]
    messages = [
        msg(1, text="x", text_entities=entities),
        msg(2, text="", media_type="video_message", file="v.mp4", duration_seconds=12),
        msg(3, text="", contact_information={"first_name": "Kim"}),
        msg(4, text="", location_information={"latitude": 1.0}),
        msg(5, text="", poll={"question": [{"type": "bold", "text": "Q?"}], "answers": []}),
        msg(6, text="", file="doc.pdf"),
        {**msg(7), "from": None, "from_id": None},
        {**msg(8), "from": None},
        msg(9, text=""),
        {"id": 10, "type": "unsupported"},
        {**msg(11), "type": "brand_new_kind"},
        msg(12, text="", media_type="sticker", file="s.webp"),
        {"id": 13, "type": "service", "date_unixtime": "1672567300", "actor": "Sam",
         "actor_id": "user42", "action": "clear_history", "text": ""},
    ]
    reader = TelegramExport(write(tmp_path / "r.json", chat(*messages)))
    got = {m.id: m for m in reader.messages()}
    assert got[1].text == "call +1 555 0101 or a@b.c"
    assert got[1].pii == [("phone", "+1 555 0101"), ("email", "a@b.c")]
    assert [got[i].media for i in (2, 3, 4, 5, 6, 12)] == [
        "[video message 0:12]", "[contact]", "[location]", "[poll: Q?]", "[file]", "[sticker]"]
    assert got[7].drop == "deleted_account"
    assert got[8].drop is None and got[8].speaker == "Deleted Account"
    assert [got[i].drop for i in (9, 10, 11)] == ["empty", "unsupported", "unknown"]
    assert reader.unknown["message type brand_new_kind"] == 1
    assert got[13].kind == "boundary" and got[13].drop == "service"


def test_hex_escapes_fixed_but_not_after_an_escaped_backslash(tmp_path: Path) -> None:
    body = json.dumps(chat(msg(1, "aQb"), msg(2, r"C:\xff"), msg(3, "\\Q")))
    body = body.replace("aQb", r"a\x0bb").replace(r"C:\\xff", r"C:\\\\x41")  # even run: literal
    body = body.replace(r'"\\Q"', r'"\\\x07"')  # an escaped backslash, then a real \x escape
    got = read(write(tmp_path / "x.json", body))
    assert [m.text for m in got] == ["a\x0bb", "C:\\\\x41", "\\\x07"]


@pytest.mark.parametrize("cut", range(1, 9))
def test_hex_escape_split_at_every_chunk_edge(cut: int) -> None:
    data = rb'"\x0b \\x41 \\\x1f \x"'
    fixer = EscapeFixer()
    pieces = [data[i:i + cut] for i in range(0, len(data), cut)]
    out = b"".join(fixer.fix(p) for p in pieces) + fixer.fix(b"", final=True)
    assert out == rb'"\u000b \\x41 \\\u001f \x"'


@needs_fixtures
@pytest.mark.parametrize(("chunk", "top_up"), [(1, 0), (2, 0), (3, 5), (7, 0), (64, 100)])
def test_tiny_read_chunks_give_the_same_messages(monkeypatch, tmp_path, chunk, top_up) -> None:
    """Every token, escape and multi-byte character lands on a chunk edge somewhere."""
    source = (FIXTURES / "tg2md_channel_2021.json").read_text(encoding="utf-8")
    path = write(tmp_path / "e.json", source.replace("utf-8.", r"utf-8.\x01"))
    expected = [(m.id, m.text, m.time, m.media) for m in read(path)]
    assert expected[13][1] == "тестирование utf-8.\x01"
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    monkeypatch.setattr(jsonstream, "TOP_UP", top_up)
    assert [(m.id, m.text, m.time, m.media) for m in read(path)] == expected


@needs_fixtures
@pytest.mark.parametrize("chunk", [1, 2, 1 << 18])
def test_utf8_bom_is_accepted(monkeypatch, tmp_path: Path, chunk: int) -> None:
    source = (FIXTURES / "chat_analytics_dm.json").read_bytes()
    path = write(tmp_path / "bom.json", b"\xef\xbb\xbf" + source)
    plain = read(FIXTURES / "chat_analytics_dm.json")
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)  # the mark split across reads, too
    assert [m.text for m in read(path)] == [m.text for m in plain] and plain[1].text


def test_streaming_memory_stays_far_below_file_size(tmp_path: Path) -> None:
    """A ~20 MB export is read with a few MB of Python allocations: nothing holds the file."""
    one = json.dumps(msg(1, "привет, как дела? 🙂 " * 150), ensure_ascii=False, indent=1)
    count = 4_000
    path = tmp_path / "big.json"
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"name": "Sam", "type": "personal_chat", "id": 42, "messages": [\n')
        out.write(",\n".join([one] * count) + "]}")
    size = path.stat().st_size
    reader = TelegramExport(path)
    tracemalloc.start()
    seen = sum(1 for _ in reader.messages())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert size > 15e6 and seen == count and reader.bytes_read == size
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB export"
