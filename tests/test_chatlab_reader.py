"""ChatLab JSON and JSONL (WeChat, QQ exporters): group and private chats, members, every message
type, the owner from meta.ownerId or from --me, and the bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

from builders import run_cli
from doppel.data.dataset import load_dataset
from doppel.sources import open_export
from test_reader_bad_input import fails

FIXTURES = Path(__file__).parent / "fixtures" / "chatlab"
GROUP = FIXTURES / "wechat-group.json"
PRIVATE = FIXTURES / "qq-private.jsonl"


def test_wechat_group_every_type() -> None:
    reader = open_export(GROUP)
    assert (reader.source, reader.layout, reader.owner) == ("wechat", "json",
                                                            ("wechat:wxid_alex01", "Alex"))
    got = list(reader.messages())
    assert [(c.id, c.name, c.type) for c in reader.chats] == [
        ("wechat:20001@chatroom", "周末爬山群", "private_group")]
    kept = [(m.speaker, m.text, m.media) for m in got if m.drop is None]
    assert kept == [
        ("小梅", "周末去爬山吗？", None),  # the member's group nickname
        ("Alex", "好啊，几点？", None),
        ("Jun", "", "[photo]"), ("Jun", "", "[voice]"), ("小梅", "", "[video]"),
        ("Alex", "", "[file]"), ("小梅", "", "[sticker]"), ("Jun", "", "[link]"),
        ("Alex", "", "[location]"), ("Jun", "", "[link]"),
        ("Alex", "八点在东门见", None),  # a reply
        ("Jun", "", "[contact]"),
        ("小梅", "好的，不见不散！\n记得带水", None)]
    assert [m.drop for m in got if m.drop] == ["service", "service", "service", "service",
                                               "forward", "system", "unsent", "other"]
    assert [m.kind for m in got].count("boundary") == 1  # the call
    assert got[0].time == 1709287200.0 and not reader.unknown


def test_qq_private_jsonl_without_owner() -> None:
    reader = open_export(PRIVATE)
    assert (reader.source, reader.layout, reader.owner) == ("qq", "jsonl", None)
    got = [(m.speaker_id, m.text, m.media, m.drop, m.time) for m in reader.messages()]
    assert reader.chats[0].type == "personal_chat"
    assert got == [("qq:10002", "hey, lunch?", None, None, 1709287200.0),
                   ("qq:10001", "sure! noodles?", None, None, 1709287230.0),
                   ("qq:10002", "", "[photo]", None, 1709287260.0),  # milliseconds
                   ("qq:10001", "that place is great", None, None, 1709287290.0),
                   ("qq:10002", "", None, "unsent", 1709287320.0),
                   ("qq:10002", "see you at 12", None, None, 1709287350.0)]


def test_other_platforms_are_chatlab_and_unknown_types_counted(tmp_path: Path) -> None:
    data = json.loads(GROUP.read_text(encoding="utf-8"))
    data["meta"]["platform"] = "telegram"
    data["messages"][0]["type"] = 42
    data["messages"][1]["timestamp"] = "soon"
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    reader = open_export(path)
    got = list(reader.messages())
    assert reader.source == "chatlab" and got[0].drop == got[1].drop == "unknown"
    assert reader.unknown == {"message type 42": 1, "message without a timestamp": 1}


def test_unknown_version_and_broken_files(tmp_path: Path) -> None:
    data = json.loads(GROUP.read_text(encoding="utf-8"))
    data["chatlab"]["version"] = "2.0.0"
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data), encoding="utf-8")
    fails(newer, "ChatLab format version 2.0.0", "0.x")
    lines = PRIVATE.read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines[:5], '{"_type": "message", "sender": ', *lines[5:]]),
                      encoding="utf-8")
    reader = open_export(broken)  # one damaged line costs that line, counted
    assert len(list(reader.messages())) == 6
    assert reader.tally.skipped == {"line that is not valid JSON": 1}
    header = tmp_path / "header.jsonl"
    header.write_text(lines[1][:40] + "\n" + "\n".join(lines[2:]), encoding="utf-8")
    fails(header, "line 1 is not valid JSON")
    cut = tmp_path / "cut.json"
    cut.write_bytes(GROUP.read_bytes()[:3000])
    fails(cut, "not valid JSON")


def test_prepare_group_with_owner_and_private_with_me(tmp_path, monkeypatch, capsys) -> None:
    code, stdout, err = run_cli(["prepare", str(GROUP), str(PRIVATE), "--list-speakers"],
                                monkeypatch, capsys)
    assert code == 0, err
    assert "小梅\t4\twechat" in stdout and "Sam\t3\tqq" in stdout
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(GROUP), str(PRIVATE), "-o", str(out), "--me",
                            "Alex", "--groups", "-q"], monkeypatch, capsys)
    assert code == 0, err
    dataset = load_dataset(out)
    sources = dataset.manifest["counts"]["sources"]
    assert sources["wechat"]["messages_kept"] > 0 and sources["qq"]["messages_kept"] > 0
    texts = [m.text for c in dataset.conversations() for m in c.messages]
    assert "that place is great" in texts and "八点在东门见" in texts
