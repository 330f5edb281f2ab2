"""WhatsApp exports: every shared fixture and one of our own per locale rule, the zip, bad input."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from builders import run_cli
from doppel.data.dataset import load_dataset
from doppel.errors import DoppelError
from doppel.sources import open_export
from doppel.sources.records import ReadSettings
from test_reader_bad_input import fails

OURS = Path(__file__).parent / "fixtures" / "whatsapp"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "whatsapp"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is not present")


def read(path: Path, **settings) -> list[tuple]:
    """(local time, speaker, drop, media, text) per message; system lines' text left out."""
    reader = open_export(path, ReadSettings(**settings))
    assert reader.source == "whatsapp"
    return [(datetime.fromtimestamp(m.time, UTC).strftime("%Y-%m-%d %H:%M:%S"), m.speaker,
             m.drop, m.media, "" if m.drop == "system" else m.text) for m in reader.messages()]


EXPECTED = {
    "android-ar.txt": [  # Arabic-Indic digits, U+200F marks, "، " and "م"/"ص" after U+00A0
        ("2024-03-15 22:15:00", "سارة", None, None, "مرحبا"),
        ("2024-03-15 22:16:00", "Alex", None, None, "أهلا"),
        ("2024-03-16 09:00:00", "سارة", None, None, "صباح الخير"),
    ],
    "android-cs.txt": [  # dots, no comma
        ("2024-03-12 22:15:00", "Petr", None, None, "ahoj"),
        ("2024-03-12 22:16:00", "Alex", None, None, "ahoj Petře"),
        ("2024-03-31 07:45:00", "Petr", None, None, "dobré ráno"),
    ],
    "android-de.txt": [  # a system line with a colon in it; German placeholders
        ("2024-03-12 21:58:00", None, "system", None, ""),
        ("2024-03-12 22:15:00", "Jonas", None, None, "Hallo!"),
        ("2024-03-12 22:16:00", "Alex", None, None, "Hi Jonas"),
        ("2024-03-12 22:17:00", "Jonas", None, "[media]", ""),
        ("2024-03-13 08:01:00", None, "system", None, ""),
        ("2024-03-13 08:02:00", "Jonas", "deleted", None, ""),
        ("2024-03-13 08:03:00", "Alex", None, None, "Guten Morgen"),
    ],
    "android-en-us-12h.txt": [  # month first, U+202F before AM/PM, multi-line with a blank
        ("2024-03-12 21:58:00", None, "system", None, ""),
        ("2024-03-12 22:15:00", "Anna Lee", None, None, "hey!"),
        ("2024-03-12 22:15:00", "Alex", None, None, "hi\nhow are you?\n\nstill there?"),
        ("2024-03-12 22:16:00", "Anna Lee", None, "[media]", ""),
        ("2024-03-12 22:17:00", "Anna Lee", "deleted", None, ""),
        ("2024-03-12 22:18:00", "Alex", None, None, "see you at 8"),
        ("2024-03-13 00:05:00", "Alex", None, "[photo]", "look at this"),
        ("2024-03-13 00:06:00", "Anna Lee", None, "[location]", ""),
        ("2024-03-13 12:30:00", "Anna Lee", "view_once", None, ""),
        ("2024-03-14 07:00:00", "Anna Lee", None, None, "morning ☀️"),
    ],
    "android-es-12h.txt": [  # "p. m." and "p.\u00a0m."
        ("2019-01-30 20:49:00", "Lucía", None, None, "hola"),
        ("2019-01-30 20:50:00", "Alex", None, None, "hola!"),
        ("2019-01-31 00:05:00", "Lucía", None, "[media]", ""),
        ("2019-01-31 00:06:00", "Lucía", "deleted", None, ""),
        ("2019-01-31 09:15:00", "Alex", None, None, "buenos días"),
    ],
    "android-ja-12h.txt": [  # year first, 午前/午後 before the time
        ("2024-03-18 14:56:00", "Yuki", None, None, "こんにちは"),
        ("2024-03-18 14:57:00", "Alex", None, None, "やあ"),
        ("2024-03-19 09:05:00", "Yuki", None, None, "おはよう"),
    ],
    "android-nl-no-comma.txt": [
        ("2024-03-12 22:15:00", "Sanne", None, None, "hoi"),
        ("2024-03-12 22:16:00", "Alex", None, None, "hoi!"),
        ("2024-03-25 09:00:00", "Sanne", None, "[media]", ""),
        ("2024-03-25 09:01:00", "Alex", None, None, "mooi"),
    ],
    "ios-en-gb-crlf.txt": [  # CRLF, U+200E, a BOM mid-file, seconds, attachments
        ("2024-03-12 21:58:01", None, "system", None, ""),
        ("2024-03-12 22:15:03", "Maya", None, None, "hey"),
        ("2024-03-12 22:15:09", "Alex", None, None, "hi!"),
        ("2024-03-12 22:16:00", "Maya", None, "[photo]", ""),
        ("2024-03-13 09:00:00", "Alex", None, "[photo]", ""),
        ("2024-03-13 09:01:00", "Maya", None, "[file]", ""),
        ("2024-03-13 09:02:00", "Maya", "deleted", None, ""),
        ("2024-03-13 09:03:00", "Alex", None, None, "multi\nline"),
    ],
    "ios-id-dots.txt": [
        ("2022-03-27 14:56:01", "Budi", None, None, "halo"),
        ("2022-03-27 14:57:30", "Alex", None, None, "halo juga"),
    ],
    "ios-ja-era.txt": [  # Reiwa 6 = 2024
        ("2024-03-18 14:56:01", "Yuki", None, None, "こんにちは"),
        ("2024-03-18 14:57:00", "Alex", None, None, "こんにちは!"),
    ],
    "ios-th-buddhist.txt": [  # 2567 BE = 2024
        ("2024-03-18 14:56:01", "Somchai", None, None, "สวัสดี"),
        ("2024-03-18 14:57:00", "Alex", None, None, "สวัสดีครับ"),
    ],
    "ios-vi-time-first.txt": [
        ("2022-03-27 21:41:35", "Lan", None, None, "chào"),
        ("2022-03-27 21:42:00", "Alex", None, None, "chào Lan"),
        ("2022-03-28 08:05:00", "Lan", None, None, "chào buổi sáng"),
    ],
    "order-by-time.txt": [  # no field above 12: the order that keeps time moving forward
        ("2024-01-02 10:00:00", "Kim", None, None, "hi"),
        ("2024-01-03 10:01:00", "Alex", None, None, "hello"),
        ("2024-02-01 11:00:00", "Kim", None, None, "a month later"),
        ("2024-02-01 11:05:00", "Alex", None, None, "yes"),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_our_locale_fixtures(name: str) -> None:
    assert read(OURS / name) == EXPECTED[name]


def test_ambiguous_dates_ask_for_the_order() -> None:
    with pytest.raises(DoppelError, match="--date-order dmy or --date-order mdy"):
        read(OURS / "ambiguous-order.txt")
    assert [r[0][:10] for r in read(OURS / "ambiguous-order.txt", date_order="mdy")] == [
        "2024-01-02", "2024-01-02", "2024-03-04", "2024-03-04"]
    assert read(OURS / "ambiguous-order.txt", date_order="dmy")[2][0][:10] == "2024-04-03"


CHAT_MINER = ["2019-01-01 11:25", "2019-01-20 11:23", "2019-01-30 20:49", "2020-06-10 15:55",
              "2020-06-20 00:08", "2020-06-30 09:10", "2021-12-10 10:10", "2021-12-20 12:10",
              "2021-12-30 22:01"]


@needs_shared
@pytest.mark.parametrize("name", ["bracketed_mmddyy_24hrs", "ddmmyy_24hrs", "mmddyy_24hrs",
                                  "mmddyyyy_12hrs", "yyyymmdd_24hrs"])
def test_chat_miner_fixtures_read_alike_in_every_date_shape(name: str) -> None:
    rows = read(SHARED / f"chat-miner__test_{name}.txt")
    assert [r[0][:16] for r in rows] == CHAT_MINER
    assert [r[2] for r in rows].count("system") == 2  # "created group", "You were added"
    spoken = [r for r in rows if r[2] is None]
    assert len(spoken) == 7
    assert spoken[2][1:] == ("Jahn Doe", None, None, "Lorem ipsum dolor sit amet,\n"
                             "consectetur adipiscing elit. Duis libero.")
    assert spoken[1][4] == "." and spoken[3][4] == "Lorem ipsum : dolor sit amet."
    assert {r[1] for r in spoken} == {"John Doe", "Jahn Doe", "John-John Doe", "John Doe 🤓", "🤓"}


@needs_shared
def test_tree_sitter_ios_group_fixture() -> None:
    rows = read(SHARED / "tree-sitter-whatsapp__chat.txt")
    assert len(rows) == 23
    assert [r[2] for r in rows[:3]] == ["system"] * 3  # encryption, created, added you
    spoken = [r for r in rows if r[2] is None]
    assert len(spoken) == 20 and all(r[1] != "SF PARC" for r in spoken)
    speakers = {r[1] for r in spoken}
    assert {"Martin", "Nick Linck", "Uma"} <= speakers  # "~ " and U+202F stripped
    assert ("2025-11-05 23:06:48", "Shivi", None, None, "High quality tweets only.\nthis is not "
            "a line.\nhttps://x.com/shivangraisuran/status/1986327211352465642?s=46") in rows
    assert ("2025-11-05 11:31:08", "Mackay", None, None,
            "Tactical Advancement at 2pm with Nef tomorrow!!") in rows  # edit mark gone
    assert ("2025-11-05 11:33:05", "Mackay", None, "[poll: Slot]", "") in rows
    assert sum(r[3] == "[photo]" for r in rows) == 2
    assert not any("\u200e" in r[4] or "\u202f" in r[4] for r in rows)


@needs_shared
def test_datadonation_android_fixture() -> None:
    rows = read(SHARED / "port-whatsapp-datadonation___chat_file3.txt")
    assert rows[0][2] == "system" and len(rows) == 10
    assert rows[1] == ("2022-03-16 15:20:00", "person1", None, None, "Hi \n\nshiva!")
    assert rows[5][3] == "[location]"
    assert rows[-1] == ("2020-07-14 22:05:00", "person4", None, None, "👍Bedankt")


def test_zip_with_media_and_the_chat_name_from_the_file(tmp_path: Path) -> None:
    android = tmp_path / "WhatsApp Chat with Anna Lee.zip"
    with zipfile.ZipFile(android, "w") as archive:
        archive.write(OURS / "android-en-us-12h.txt", "WhatsApp Chat with Anna Lee.txt")
        archive.writestr("IMG-20240313-WA0001.jpg", b"\xff\xd8\xff" + bytes(100))
    ios = tmp_path / "WhatsApp Chat - Maya.zip"
    with zipfile.ZipFile(ios, "w") as archive:
        archive.write(OURS / "ios-en-gb-crlf.txt", "_chat.txt")
        archive.writestr("00000035-PHOTO-2024-03-13-09-00-00.jpg", bytes(50))
    for path, name, fixture in ((android, "Anna Lee", "android-en-us-12h.txt"),
                                (ios, "Maya", "ios-en-gb-crlf.txt")):
        assert read(path) == EXPECTED[fixture]
        reader = open_export(path)
        list(reader.messages())
        assert reader.layout == "zip"
        assert [(c.name, c.source, c.type) for c in reader.chats] == [
            (name, "whatsapp", "personal_chat")]


def test_prepare_a_whatsapp_zip_and_its_date_order_flag(tmp_path, monkeypatch, capsys) -> None:
    export = tmp_path / "WhatsApp Chat with Kim.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.write(OURS / "ambiguous-order.txt", "WhatsApp Chat with Kim.txt")
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(export), "-o", str(out), "--me", "Alex"],
                           monkeypatch, capsys)
    assert code == 2 and "--date-order" in err and not out.exists()
    code, _, err = run_cli(["prepare", str(export), "-o", str(out), "--me", "Alex",
                            "--date-order", "mdy", "--gap", "1d", "-q"], monkeypatch, capsys)
    assert code == 0, err
    dataset = load_dataset(out)
    (chat,) = [c["id"] for c in dataset.manifest["chats"]]
    assert dataset.me_id == f"{chat}/Alex" and dataset.manifest["params"]["date_order"] == "mdy"
    assert [c.chat_name for c in dataset.conversations()] == ["Kim", "Kim"]


@pytest.mark.parametrize(("content", "words"), [
    (b"just some notes\n10:15 meeting\n", ("not an export doppel knows", "WhatsApp")),
    ("12/03/2024, 10:15 - Anna: caf\u00e9\n".encode() + "13/03/2024, 10:15 - Anna: caf\u00e9\n"
     .encode("cp1252"), ("not UTF-8", "byte 0xe9", "iconv")),
    (b"\n\n", ("is empty",)),
])
def test_bad_text_files_say_so(tmp_path: Path, content: bytes, words: tuple[str, ...]) -> None:
    path = tmp_path / "chat.txt"
    path.write_bytes(content)
    fails(path, *words)


def test_truncated_zip_is_one_line_and_no_output(tmp_path, monkeypatch, capsys) -> None:
    export = tmp_path / "WhatsApp Chat with Anna.zip"
    with zipfile.ZipFile(export, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(OURS / "android-en-us-12h.txt", "WhatsApp Chat with Anna.txt")
    export.write_bytes(export.read_bytes()[:200])
    code, _, err = run_cli(["prepare", str(export), "-o", str(tmp_path / "ds"), "--me", "Alex"],
                           monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "zip" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [export.name]


def test_a_chat_with_only_system_lines_is_an_error_not_a_crash(tmp_path, monkeypatch,
                                                              capsys) -> None:
    export = tmp_path / "chat.txt"
    export.write_text("12/03/2024, 10:15 - Messages and calls are end-to-end encrypted.\n"
                      "12/03/2024, 10:16 - Anna added Ben\n", encoding="utf-8")
    code, _, err = run_cli(["prepare", str(export), "-o", str(tmp_path / "ds"), "--groups"],
                           monkeypatch, capsys)
    assert code == 2 and "no messages" in err and not (tmp_path / "ds").exists()


def test_a_file_cut_inside_a_message_is_still_whatsapp(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("of the previous message\n\n" + (OURS / "android-cs.txt").read_text("utf-8"),
                    encoding="utf-8")
    reader = open_export(path)
    assert [m.text for m in reader.messages()] == ["ahoj", "ahoj Petře", "dobré ráno"]
    assert reader.tally.skipped == {"line outside any message": 1}  # the blank line: layout
    assert reader.tally.layout == 1
