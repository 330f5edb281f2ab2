"""LINE (English, Japanese, Chinese, Thai) and KakaoTalk (PC and phone text, Korean and English,
and CSV): hand-written fixtures in each shape, media and system lines, detection by content,
the unknown-language error, and a prepare merging both with another app."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from builders import run_cli
from doppel.data.dataset import load_dataset
from doppel.sources import open_export
from test_reader_bad_input import fails

FIXTURES = Path(__file__).parent / "fixtures"
LINE = FIXTURES / "line"
KAKAO = FIXTURES / "kakaotalk"


def rows(path: Path) -> tuple[object, list[tuple]]:
    reader = open_export(path)
    got = [(datetime.fromtimestamp(m.time, UTC).strftime("%Y-%m-%d %H:%M"), m.speaker, m.kind,
            m.drop, m.media, m.text) for m in reader.messages()]
    return reader, got


def test_line_english() -> None:
    reader, got = rows(LINE / "en-sam.txt")
    assert (reader.source, reader.language) == ("line", "en")
    assert [(c.name, c.type) for c in reader.chats] == [("Sam", "personal_chat")]
    assert got == [
        ("2024-03-12 10:15", "Sam", "message", None, None, "hey, are we still on for friday?"),
        ("2024-03-12 10:16", "Alex", "message", None, None, "yes! 7pm at the usual place"),
        ("2024-03-12 10:16", "Alex", "message", None, "[sticker]", ""),
        ("2024-03-12 10:20", "Sam", "message", None, None,
         'ok, bring:\n- the book\n- your "famous" cake'),  # quoted, quotes doubled
        ("2024-03-12 10:21", "Sam", "message", None, "[photo]", ""),
        ("2024-03-12 10:30", None, "message", "system", None, "Sam unsent a message."),
        ("2024-03-13 21:02", "Alex", "boundary", "service", None, ""),  # a call; 9:02 PM
        ("2024-03-13 21:10", "Alex", "message", None, None, "see you friday"),
        ("2024-03-13 21:11", "Sam", "message", None, "[voice]", "")]


@pytest.mark.parametrize(("name", "language", "title", "kind", "first", "last"), [
    ("ja-group.txt", "ja", "週末の会", "private_group",
     ("2024-03-12 10:15", "さくら", "金曜日は大丈夫？"), ("2024-03-12 21:03", "ケン", "了解！")),
    ("zh-xiaoming.txt", "zh", "小明", "personal_chat",
     ("2024-03-12 10:15", "小明", "週五還可以嗎？"), ("2024-03-12 21:02", "小明", "")),
    ("th-somchai.txt", "th", "สมชาย", "personal_chat",  # Buddhist year 2567 = 2024, day first
     ("2024-03-12 10:15", "สมชาย", "วันศุกร์ยังโอเคไหม"), ("2024-03-12 21:02", "สมชาย", "")),
])
def test_line_other_languages(name, language, title, kind, first, last) -> None:
    reader, got = rows(LINE / name)
    assert (reader.language, reader.chats[0].name, reader.chats[0].type) == (language, title,
                                                                             kind)
    assert (got[0][0], got[0][1], got[0][5]) == first
    assert (got[-1][0], got[-1][1], got[-1][5]) == last
    assert got[-1][4] in ("[sticker]", None) and "Alex" in {r[1] for r in got}


def test_line_japanese_system_line_and_media() -> None:
    _, got = rows(LINE / "ja-group.txt")
    assert ("2024-03-12 10:18", None, "message", "system", None,
            "ケンがグループに参加しました。") in got
    assert [r[4] for r in got if r[4]] == ["[sticker]", "[photo]"]


def test_line_unknown_language_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    path = tmp_path / "chat.txt"
    path.write_text("[LINE] Historial de chat con Ana\n\n2024/03/12(mar)\n10:15\tAna\thola\n",
                    encoding="utf-8")
    fails(path, "language doppel does not know", "English, Japanese, Chinese or Thai")
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(path), "-o", str(out), "--me", "Ana"], monkeypatch,
                           capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists()


def test_line_without_messages(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text("[LINE] Chat history with Ana\nSaved on: 3/14/2024, 21:05\n", encoding="utf-8")
    fails(path, "no message lines")


def test_kakaotalk_pc_korean() -> None:
    reader, got = rows(KAKAO / "pc-ko-minji.txt")
    assert (reader.source, reader.layout, reader.chats[0].name) == ("kakaotalk", "txt", "민지")
    assert got == [
        ("2024-03-12 10:15", "민지", "message", None, None, "금요일 괜찮아?"),
        ("2024-03-12 10:16", "Alex", "message", None, None, "응! 7시에 거기서"),
        ("2024-03-12 10:16", "Alex", "message", None, "[sticker]", ""),
        ("2024-03-12 12:03", "민지", "message", None, None, "좋아\n케이크 가져갈게"),  # 오후 12:03
        ("2024-03-12 12:04", "민지", "message", None, "[photo]", ""),
        ("2024-03-12 12:05", "민지", "message", "deleted", None, ""),
        ("2024-03-13 21:10", "Alex", "message", None, None, "금요일에 봐"),
        ("2024-03-13 21:11", "민지", "message", None, "[voice]", "")]


def test_kakaotalk_pc_english_group() -> None:
    reader, got = rows(KAKAO / "pc-en-bookclub.txt")
    assert (reader.chats[0].name, reader.chats[0].type) == ("Book Club", "private_group")
    assert ("2024-03-12 10:16", None, "message", "system", None,
            "Minho joined this chatroom.") in got
    assert [(r[0], r[1], r[4]) for r in got if r[4]] == [
        ("2024-03-12 12:04", "Jisoo", "[photo]"), ("2024-03-12 13:00", "Minho", "[file]")]


def test_kakaotalk_phone_exports_and_csv() -> None:
    _, korean = rows(KAKAO / "phone-ko-minji.txt")
    assert korean == [
        ("2024-03-12 10:15", "민지", "message", None, None, "금요일 괜찮아?"),
        ("2024-03-12 10:16", "Alex", "message", None, None, "응!\n둘째 줄"),
        ("2024-03-12 10:20", None, "message", "system", None, "민지님이 들어왔습니다."),
        ("2024-03-12 21:02", "민지", "message", None, "[photo]", "")]  # iOS dates, 사진 3장
    _, english = rows(KAKAO / "phone-en-minji.txt")
    assert [(r[0], r[1], r[4], r[5]) for r in english] == [
        ("2024-03-12 10:15", "Minji", None, "are we on for friday?"),
        ("2024-03-12 10:16", "Alex", None, "yes!"),
        ("2024-03-12 21:02", "Minji", "[sticker]", "")]
    reader, table = rows(KAKAO / "minji.csv")
    assert reader.layout == "csv"
    assert [(r[0], r[1], r[4], r[5]) for r in table] == [
        ("2024-03-12 10:15", "민지", None, "금요일 괜찮아?"),
        ("2024-03-12 10:16", "Alex", None, "응, 7시에\n거기서"),
        ("2024-03-12 10:17", "민지", "[photo]", "")]


def test_prepare_line_and_kakaotalk_together(tmp_path, monkeypatch, capsys) -> None:
    code, stdout, err = run_cli(["prepare", str(LINE / "en-sam.txt"),
                                 str(KAKAO / "pc-ko-minji.txt"), "--list-speakers"],
                                monkeypatch, capsys)
    assert code == 0, err
    assert "Sam\t4\tline" in stdout and "민지\t4\tkakaotalk" in stdout
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(LINE / "en-sam.txt"), str(KAKAO / "pc-ko-minji.txt"),
                            "-o", str(out), "--me", "Alex", "-q"], monkeypatch, capsys)
    assert code == 0, err
    dataset = load_dataset(out)
    sources = dataset.manifest["counts"]["sources"]
    assert sources["line"]["messages_kept"] > 0 and sources["kakaotalk"]["messages_kept"] > 0
    assert dataset.manifest["counts"]["dropped"]["deleted"] == 1
