"""Nothing lost, nothing hangs (issue 28): every line or record a reader sees is in a message,
joined to one, layout, or counted as skipped with a reason; a 1 MB line and a 10,000-deep
nesting finish in bounded time with a result or one line; and the cases that once lost messages
silently or ended in a traceback."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from builders import run_cli
from doppel.errors import DoppelError
from doppel.sources import ReadSettings, open_export
from doppel.sources.tally import Tally

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
SHARED = HERE.resolve().parents[1] / "shared" / "fixtures"
MB = 1 << 20
LIMIT_SECONDS = 2.0  # CPU seconds per input: the machine may be shared, CPU time is the cost


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


TEXT_EXPORTS = [*_files(FIXTURES / "whatsapp", "*.txt"), *_files(SHARED / "whatsapp", "*.txt"),
                *_files(SHARED / "signal", "*.txt"), *_files(FIXTURES / "line", "*.txt"),
                *_files(FIXTURES / "kakaotalk", "*"), FIXTURES / "chatlab" / "qq-private.jsonl"]


def _lines_in(path: Path) -> int:
    """Lines as the readers split them (textlines.py): at LF, CRLF read as LF, no last empty."""
    text = path.read_bytes().decode("utf-8").replace("\r\n", "\n").removesuffix("\n")
    return text.count("\n") + 1


def _read(path: Path) -> tuple[object, list]:
    order = "dmy" if path.name.startswith("ambiguous") else "auto"
    reader = open_export(path, ReadSettings(date_order=order))
    return reader, list(reader.messages())


@pytest.mark.parametrize("path", TEXT_EXPORTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_line_of_a_text_export_is_accounted_for(path: Path) -> None:
    reader, got = _read(path)
    tally: Tally = reader.tally
    assert tally.read == _lines_in(path)
    assert tally.accounted == tally.read, tally
    assert tally.started == len(got)
    assert not tally.skipped, tally.skipped  # real exports lose nothing


def test_lines_outside_messages_and_past_a_message_are_counted(tmp_path: Path) -> None:
    """Text before the first message, and lines past a message's 10,000, are skipped with a
    reason in every text reader, and the sum still holds."""
    more = "\n".join(["x"] * 10_005)
    cases = {
        "wa.txt": ("12/03/2024, 10:15 - Alex: hi\n12/03/2024, 10:16 - Sam: yo\n",
                   "12/03/2024, 10:17 - Sam: long\n"),
        "signal.txt": ("[2024-01-01, 10:00] Alex: hi\n[2024-01-01, 10:01] Sam: yo\n",
                       "[2024-01-01, 10:02] Sam: long\n"),
        "line.txt": ("[LINE] Chat history with Sam\nSaved on: 3/14/2024, 21:05\n\n"
                     "Tue, 3/12/2024\n10:15\tSam\thi\n10:16\tAlex\tyo\n", "10:17\tSam\tlong\n"),
        "kakao.txt": ("KakaoTalk Chats with Sam\nDate Saved : 2024-03-14 21:05:00\n\n"
                      "--------------- Tuesday, March 12, 2024 ---------------\n"
                      "[Sam] [10:15 AM] hi\n[Alex] [10:16 AM] yo\n", "[Sam] [10:17 AM] long\n"),
        "kakao.csv": ('Date,User,Message\n2024-03-12 10:15:00,"Sam","hi"\n'
                      '2024-03-12 10:16:00,"Alex","yo"\n', '2024-03-12 10:17:00,"Sam","long\n'),
    }
    for name, (head, start) in cases.items():
        path = tmp_path / name
        if name == "wa.txt":  # a file cut by hand: text before the first message
            head = "the end of a message cut off\n" + head
        elif name == "line.txt":
            head = head.replace("Tue, 3/12/2024\n", "Tue, 3/12/2024\n" + "10:14\tSam\tx\n", 0)
            head = head.replace("\n\nTue", "\nstray text\n\nTue")
        elif name == "kakao.txt":
            head = head.replace("\n\n---", "\nstray text\n\n---")
        elif name == "kakao.csv":
            head = head.replace("\n2024", "\nstray text\n2024", 1)
        path.write_text(head + start + more + ('"' if name.endswith(".csv") else "") + "\n",
                        encoding="utf-8")
        reader, got = _read(path)
        tally = reader.tally
        assert tally.read == _lines_in(path) and tally.accounted == tally.read, (name, tally)
        assert tally.started == len(got), name
        outside = {} if name == "signal.txt" else {"line outside any message": 1}
        assert tally.skipped == {**outside, "line beyond a message's size": 5}, (name, tally)


def _json_records(path: Path) -> int:
    data = json.loads(path.read_text(encoding="utf-8"))
    if "chats" in data:
        return sum(len(chat.get("messages", [])) for key in ("chats", "left_chats")
                   for chat in data.get(key, {}).get("list", []))
    return len(data["messages"])


STRUCTURED = [*_files(FIXTURES / "discord", "*.json"), *_files(SHARED / "telegram", "*.json"),
              *_files(SHARED / "instagram", "*.json"), FIXTURES / "chatlab" / "wechat-group.json"]


@pytest.mark.parametrize("path", STRUCTURED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_record_of_a_structured_export_is_read_or_counted(path: Path) -> None:
    reader, got = _read(path)
    assert len(got) + sum(reader.tally.skipped.values()) == _json_records(path)


def test_records_seen_twice_are_counted(tmp_path: Path) -> None:
    """A Telegram chat listed in chats and left_chats, a Discord message id seen twice (merged
    re-exports): read once, the rest counted."""
    chat = {"id": 5, "name": "Sam", "type": "personal_chat", "messages": [
        {"id": i, "type": "message", "date_unixtime": str(1.7e9 + i), "from": "Sam",
         "from_id": "user5", "text": f"m{i}"} for i in range(3)]}
    full = {"personal_information": {"user_id": 1}, "chats": {"list": [chat]},
            "left_chats": {"list": [chat]}}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(full), encoding="utf-8")
    reader, got = _read(path)
    assert len(got) == 3 and reader.tally.skipped == {"message of a chat listed twice": 3}
    discord = json.loads((FIXTURES / "discord" / "dm-sam.json").read_text(encoding="utf-8"))
    before = _read(FIXTURES / "discord" / "dm-sam.json")[0].tally.skipped["message id seen twice"]
    discord["messages"].append(discord["messages"][0])
    path = tmp_path / "dm.json"
    path.write_text(json.dumps(discord), encoding="utf-8")
    reader, got = _read(path)
    assert reader.tally.skipped == {"message id seen twice": before + 1}
    assert len(got) + before + 1 == len(discord["messages"])


def test_imessage_reads_every_row(tmp_path: Path) -> None:
    from imessage_db import MessagesDB

    db = MessagesDB(tmp_path / "chat.db")
    sam = db.handle("+14155552671")
    one = db.chat([sam])
    for n in range(30):
        db.message(one, 1.7e9 + n, text=f"m{n}", handle=sam, mine=n % 2 == 0)
    db.message(None, 1.7e9 + 99, text="in no chat", handle=sam)
    db.close()
    rows = sqlite3.connect(tmp_path / "chat.db").execute("SELECT count(*) FROM message")
    reader, got = _read(tmp_path / "chat.db")
    assert len(got) == rows.fetchone()[0] == 31 and not reader.tally.skipped


# -- bounded time ---------------------------------------------------------------------------------
def _timed(path: Path) -> tuple[float, str]:
    """(CPU seconds, what came of it) for reading `path` whole."""
    started = time.process_time()
    try:
        outcome = f"{len(_read(path)[1])} messages"
    except DoppelError as error:
        assert "\n" not in str(error)
        outcome = "error"
    return time.process_time() - started, outcome


LINE_HEAD = ("[LINE] Chat history with Sam\nSaved on: 3/14/2024, 21:05\n\nTue, 3/12/2024\n"
             "10:15\tSam\thi\n")
KAKAO_PC = ("KakaoTalk Chats with Sam\nDate Saved : 2024-03-14 21:05:00\n\n"
            "--------------- Tuesday, March 12, 2024 ---------------\n[Sam] [10:15 AM] hi\n")
KAKAO_PHONE = ("민지 님과 카카오톡 대화\n저장한 날짜 : 2024. 3. 14. 오후 9:05\n\n"
               "2024년 3월 12일 오전 10:15, 민지 : hi\n")
WHATSAPP = "12/03/2024, 10:15 - Alex: hi\n12/03/2024, 10:16 - Sam: yo\n"
SIGNAL = "[2024-01-01, 10:00] Alex: hi\n[2024-01-01, 10:01] Sam: yo\n"
CHATLAB = ('{"_type": "header", "chatlab": {"version": "0.0.1"}, "meta": {"name": "Sam", '
           '"platform": "qq", "type": "private"}}\n')
# (reader, file name, text before the line, the line): lines shaped to make a backtracking
# pattern try every split (long runs of what a pattern repeats, after a valid start)
LONG_LINES = [
    ("line", "l1.txt", LINE_HEAD, "2024/03/12" + " " * MB + "x"),
    ("line", "l2.txt", LINE_HEAD, "a," * (MB // 2)),
    ("line", "l3.txt", LINE_HEAD, "10:15\tSam\t" + "a" * MB),
    ("line", "l4.txt", LINE_HEAD, "10:15" + "pm" * (MB // 2)),
    ("kakaotalk", "k1.txt", KAKAO_PC, "----- 2024년 3월 12일" + "-" * MB + "x"),
    ("kakaotalk", "k2.txt", KAKAO_PC, "님이 " * (MB // 3)),
    ("kakaotalk", "k3.txt", KAKAO_PC, "[" + "a" * MB),
    ("kakaotalk", "k4.txt", KAKAO_PC, "a invited " * (MB // 10) + "x"),
    ("kakaotalk", "k5.txt", KAKAO_PHONE, "2024년 3월 12일 오전 10:15, " + "a : " * (MB // 4)),
    ("kakaotalk", "k6.csv", 'Date,User,Message\n2024-03-12 10:15:00,"Sam","hi"\n',
     '2024-03-12 10:16:00,"Sam","' + "a" * MB),
    ("whatsapp", "w1.txt", WHATSAPP, "12/03/2024, 10:15 " + "a" * MB),
    ("whatsapp", "w2.txt", WHATSAPP, "12/03/2024, 10:17 - Sam: " + " " * MB + "<x>"),
    ("whatsapp", "w3.txt", WHATSAPP, "12/03/2024, 10:17 - Sam: " + " (" * (MB // 2) + ")"),
    ("whatsapp", "w4.txt", WHATSAPP, "12/03/2024, 10:17 - Sam: <attached: " + "a " * (MB // 2)),
    ("whatsapp", "w5.txt", WHATSAPP, "1" * MB),
    ("signal", "s1.txt", SIGNAL, "[2024-01-01, 10:02] Sam: " + "a" * MB),
    ("signal", "s2.txt", SIGNAL, "[2024-01-01, " + "1" * MB),
    ("chatlab", "c1.jsonl", CHATLAB, json.dumps({"_type": "message", "sender": "1",
                                                 "timestamp": 1.7e9, "type": 0,
                                                 "content": "a" * MB})),
    ("chatlab", "c2.jsonl", CHATLAB, '{"_type": "message", "content": "' + "\\" * MB),
    ("telegram", "t1.json", "", json.dumps({"name": "Sam", "type": "personal_chat", "id": 5,
                                            "messages": [{"id": 1, "type": "message",
                                                          "date_unixtime": "1700000000",
                                                          "from": "Sam", "from_id": "user5",
                                                          "text": "a" * MB}]})),
    ("discord", "d1.json", "", json.dumps({"guild": {"id": "1"}, "channel": {"id": "2"},
                                           "messages": [{"id": "3", "type": "Default",
                                                         "content": "<:" + "a" * MB}]})),
    ("messenger", "m1.json", "", json.dumps({"participants": [{"name": "Sam"}], "messages": [
        {"sender_name": "Sam", "timestamp_ms": 1, "content": "a" * MB}]})),
]


@pytest.mark.parametrize(("source", "name", "head", "line"), LONG_LINES,
                         ids=[case[1] for case in LONG_LINES])
def test_a_one_megabyte_line_reads_in_bounded_time(tmp_path: Path, source: str, name: str,
                                                   head: str, line: str) -> None:
    path = tmp_path / name
    path.write_text(head + line + "\n", encoding="utf-8")
    assert open_export(path).source in (source, "qq")
    seconds, outcome = _timed(path)
    assert seconds < LIMIT_SECONDS, (name, seconds, outcome)


def test_imessage_one_megabyte_message_reads_in_bounded_time(tmp_path: Path) -> None:
    from doppel.sources.typedstream import encode
    from imessage_db import MessagesDB

    db = MessagesDB(tmp_path / "chat.db")
    sam = db.handle("sam@example.com")
    one = db.chat([sam])
    db.message(one, 1.7e9, text="a" * MB, handle=sam)
    db.message(one, 1.7e9 + 1, body="b" * MB, handle=sam)
    db.close()
    con = sqlite3.connect(tmp_path / "chat.db")  # a blob that says more than it holds
    con.execute("UPDATE message SET attributedBody = ? WHERE ROWID = 2",
                (encode("b" * MB)[:MB // 2],))
    con.commit()
    con.close()
    seconds, outcome = _timed(tmp_path / "chat.db")
    assert outcome == "2 messages" and seconds < LIMIT_SECONDS


DEEP = 10_000


@pytest.mark.parametrize("name", ["telegram.json", "discord.json", "meta.json", "chatlab.json",
                                  "chatlab.jsonl"])
def test_ten_thousand_deep_nesting_is_one_line_or_read(tmp_path: Path, name: str) -> None:
    nest = "[" * DEEP + "]" * DEEP
    text = {
        "telegram.json": '{"name": "Sam", "type": "personal_chat", "id": 5, "messages": [{"id": '
                         '1, "type": "message", "date_unixtime": "1", "from_id": "user5", '
                         f'"text": {nest}}}]}}',
        "discord.json": f'{{"guild": {{}}, "channel": {{"id": "2"}}, "messages": [{nest}]}}',
        "meta.json": f'{{"participants": [], "messages": [{{"sender_name": "x", "content": '
                     f'{nest}}}]}}',
        "chatlab.json": f'{{"chatlab": {{"version": "0.0.1"}}, "meta": {{}}, "messages": '
                        f'[{{"type": {nest}}}]}}',
        "chatlab.jsonl": CHATLAB + f'{{"_type": "message", "type": {nest}}}\n',
    }[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    seconds, _ = _timed(path)
    assert seconds < LIMIT_SECONDS


# -- cases that once lost messages or ended in a traceback ----------------------------------------
def _rows(path: Path) -> list[tuple]:
    return [(datetime.fromtimestamp(m.time, UTC).strftime("%Y-%m-%d %H:%M"), m.speaker, m.text,
             m.drop) for m in _read(path)[1]]


def test_line_twelve_hour_times_glued_to_the_minutes(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text("[LINE] Chat history with Sam\nSaved on: 3/14/2024, 21:05\n\n"
                    "Tue, 3/12/2024\n08:01pm\tSam\tdinner?\n08:03pm\tAlex\tyes\n"
                    "12:10am\tSam\tlate\n09:00 AM\tAlex\tmorning\n", encoding="utf-8")
    assert _rows(path) == [("2024-03-12 20:01", "Sam", "dinner?", None),
                           ("2024-03-12 20:03", "Alex", "yes", None),
                           ("2024-03-12 00:10", "Sam", "late", None),
                           ("2024-03-12 09:00", "Alex", "morning", None)]


def test_line_group_export_without_a_header(tmp_path: Path) -> None:
    path = tmp_path / "Hiking club.txt"
    path.write_text("2025.12.10 Wednesday\n08:01pm Sam who is coming?\n08:02pm Alex me\n"
                    "08:03pm Kim me too\n\n2025.12.11 Thursday\n09:15 Sam see you\nat the gate\n",
                    encoding="utf-8")
    reader, _ = _read(path)
    assert (reader.source, reader.chats[0].name, reader.chats[0].type) == (
        "line", "Hiking club", "private_group")
    assert _rows(path) == [("2025-12-10 20:01", "Sam", "who is coming?", None),
                           ("2025-12-10 20:02", "Alex", "me", None),
                           ("2025-12-10 20:03", "Kim", "me too", None),
                           ("2025-12-11 09:15", "Sam", "see you\nat the gate", None)]
    assert reader.tally.accounted == reader.tally.read == 8 and not reader.tally.skipped
    tabbed = tmp_path / "Tabbed.txt"
    tabbed.write_text("2025.12.10 Wednesday\n08:01pm\tSam\twho?\n08:02pm\tAlex\tme\n",
                      encoding="utf-8")
    assert _rows(tabbed) == [("2025-12-10 20:01", "Sam", "who?", None),
                             ("2025-12-10 20:02", "Alex", "me", None)]


def test_kakaotalk_csv_stray_quote_and_a_huge_field(tmp_path: Path) -> None:
    """A stray quote swallows only its row's lines (the next dated line starts a row), and a
    field past csv's 128 KiB limit skips its row with a count, not a traceback."""
    path = tmp_path / "chat.csv"
    path.write_text('Date,User,Message\n2024-03-12 10:15:00,"Sam","she said "hi\n'
                    '2024-03-12 10:16:00,"Alex","ok"\n'
                    f'2024-03-12 10:17:00,"Sam","{"x" * 200_000}"\n'
                    '2024-03-12 10:18:00,"Alex","bye"\n', encoding="utf-8")
    reader, got = _read(path)
    assert [m.text for m in got] == ['she said hi', "ok", "bye"]
    assert reader.tally.skipped == {"row csv cannot read": 1}


def test_chatlab_odd_timestamps_and_nesting_are_counted(tmp_path: Path) -> None:
    nest = "[" * 1000 + "]" * 1000  # under orjson's limit, past Python's recursion limit
    messages = [{"sender": "1", "type": 0, "content": "ok", "timestamp": 1.7e9},
                {"sender": "1", "type": 0, "content": "x", "timestamp": "²"},
                {"sender": "1", "type": 0, "content": "x", "timestamp": "9" * 4000},
                {"sender": "1", "type": 0, "content": "x", "timestamp": 10**300},
                {"sender": "1", "type": "NEST", "content": "x", "timestamp": 1.7e9},
                {"sender": "1", "type": 0, "timestamp": 1.7e9, "content": "NEST"}]
    text = json.dumps({"chatlab": {"version": "0.0.1"}, "meta": {"name": "Sam"},
                       "messages": messages}).replace('"NEST"', nest)
    path = tmp_path / "chat.json"
    path.write_text(text, encoding="utf-8")
    reader, got = _read(path)
    assert [(m.text, m.drop) for m in got] == [("ok", None), ("", "unknown"), ("", "unknown"),
                                               ("", "unknown"), ("", "unknown"), ("", None)]
    assert reader.unknown == {"message without a timestamp": 3, "message type list": 1}


def test_chatlab_jsonl_whose_first_line_is_the_header(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(CHATLAB + '{"_type": "member", "platformId": "1", "accountName": "Sam"}\n'
                    '{"_type": "message", "sender": "1", "timestamp": 1700000000, "type": 0, '
                    '"content": "hello"}\n', encoding="utf-8")
    reader, got = _read(path)
    assert reader.layout == "jsonl" and [(m.speaker, m.text) for m in got] == [("Sam", "hello")]
    assert reader.tally.read == reader.tally.accounted == 3


def test_prepare_prints_one_skipped_line_and_the_report_lists_them(tmp_path: Path, monkeypatch,
                                                                   capsys) -> None:
    path = tmp_path / "chat.txt"
    path.write_text("cut off text\nmore of it\n" + WHATSAPP + "12/03/2024, 10:17 - Alex: ok\n",
                    encoding="utf-8")
    out = tmp_path / "ds"
    code, stdout, err = run_cli(["prepare", str(path), "-o", str(out), "--me", "Alex", "-q"],
                                monkeypatch, capsys)
    assert code == 0, err
    said = [line for line in stdout.splitlines() if "skipped:" in line]
    assert len(said) == 1 and "whatsapp: 2 line outside any message" in said[0], stdout
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["skipped"] == {"whatsapp": {"line outside any message": 2}}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Skipped while reading" in report
    assert "| whatsapp | line outside any message | 2 |" in report
