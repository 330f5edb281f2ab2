"""Bad exports fail at once (or where the damage is) with one line that says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doppel.errors import DoppelError
from doppel.sources import open_export
from doppel.sources.telegram import TelegramExport

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
WHATSAPP = sorted((SHARED / "whatsapp").glob("*.txt")) if (SHARED / "whatsapp").is_dir() else []
GOOD = {"name": "Саша", "type": "personal_chat", "id": 42, "messages": [
    {"id": i, "type": "message", "date_unixtime": str(1672567200 + i), "from": "Саша",
     "from_id": "user42", "text": f"сообщение номер {i}"} for i in range(1, 40)]}


def fails(path: Path, *words: str) -> str:
    with pytest.raises(DoppelError) as caught:
        list(open_export(path).messages())
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_missing_path(tmp_path: Path) -> None:
    fails(tmp_path / "nope.json", "does not exist")


def test_folder_without_result_json_says_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "messages.html").write_text("<html>")
    fails(tmp_path, f"no result.json in {tmp_path}", "HTML export", "Machine-readable JSON")


@pytest.mark.parametrize(("content", "words"), [
    (b"", ("is empty",)),
    (b"hello there", ("not an export doppel knows", "WhatsApp", "Telegram Desktop JSON")),
    (b"<!DOCTYPE html><html>", ("HTML export",)),
    (b"[1, 2]", ("a JSON list", "expected an object with 'messages'")),
    (b'{"foo": 1, "bar": [1]}', ("keys foo, bar", "'chats'")),
    ("{}".encode("utf-16"), ("UTF-16", "iconv")),
])
def test_not_a_telegram_export(tmp_path: Path, content: bytes, words: tuple[str, ...]) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(content)
    fails(path, *words)


@pytest.mark.skipif(not WHATSAPP, reason=f"no WhatsApp fixtures in {SHARED / 'whatsapp'}")
@pytest.mark.parametrize("path", WHATSAPP, ids=lambda p: p.name)
def test_whatsapp_text_export_is_read_by_its_own_reader(path: Path) -> None:
    reader = open_export(path)
    assert reader.source == "whatsapp" and any(m.drop is None for m in reader.messages())


def test_windows_1251_file_names_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(json.dumps(GOOD, ensure_ascii=False).encode("cp1251"))
    fails(path, "not UTF-8", "iconv -f cp1251 -t utf-8")


def test_bad_encoding_late_in_the_file_fails_while_streaming(tmp_path: Path) -> None:
    late = {**GOOD, "messages": [*GOOD["messages"]] * 300}  # Cyrillic only after 1 MB
    text = json.dumps(late, ensure_ascii=False).replace("Саша", "Sam")
    data = text.replace("сообщение номер", "x", 10_000).encode("cp1251")
    path = tmp_path / "result.json"
    path.write_bytes(data)
    reader = TelegramExport(path)  # the start is clean ASCII: opens fine
    fails(path, "not UTF-8", "byte 0x")
    assert reader.layout == "single"


@pytest.mark.parametrize("fraction", [0.1, 0.35, 0.5, 0.77, 0.999])
def test_truncated_export_says_it_ends_early(tmp_path: Path, fraction: float) -> None:
    data = json.dumps(GOOD, ensure_ascii=False, indent=1).encode()
    path = tmp_path / "result.json"
    path.write_bytes(data[: int(len(data) * fraction)])
    fails(path, "the export ends early", "re-export")


def test_broken_json_in_the_middle_names_the_place(tmp_path: Path) -> None:
    text = json.dumps(GOOD, ensure_ascii=False, indent=1).replace('"id": 7,', '"id": 7,,', 1)
    path = tmp_path / "result.json"
    path.write_text(text, encoding="utf-8")
    fails(path, "is not valid JSON", "around byte")


def test_odd_values_are_counted_not_fatal(tmp_path: Path) -> None:
    odd = {"type": None, "id": None, "messages": [
        1, {"id": 2, "type": "message", "text": 5, "from_id": ["x"], "date": "not a date"},
        {"id": 3, "type": "message", "text": [None, {"text": None}, "ok"], "from": 7,
         "from_id": "user7"}]}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(odd))
    reader = TelegramExport(path)
    got = list(reader.messages())
    assert [(m.text, m.drop) for m in got] == [("", "unknown"), ("", "deleted_account"),
                                                   ("ok", None)]
    assert reader.chats[0].type == "unknown" and got[2].speaker == "7"
    assert reader.unknown["message that is not an object"] == 1


def test_cli_prints_one_line_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    """End to end through `doppel prepare`: the reader's error, no traceback, no output folder."""
    import subprocess
    import sys

    path = tmp_path / "result.json"
    path.write_bytes(json.dumps(GOOD, ensure_ascii=False, indent=1).encode()[:700])
    out = tmp_path / "dataset"
    done = subprocess.run([sys.executable, "-m", "doppel", "prepare", str(path), "-o", str(out),
                           "--me", "user42"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the export ends early" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
