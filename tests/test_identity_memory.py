"""Ids and scope together, as a user meets them: exports whose chats and people collide by row
number or by name are prepared through the CLI, with the memory index, and `doppel memory search
--with` on behalf of one friend must never print the secret another friend told. A leak would
show as the other secret in the output: one chat shared by two databases, one person for two
same-named friends, or a scope decided by a label."""

from __future__ import annotations

import json
from pathlib import Path

from builders import run_cli
from test_ids import line_group, messages_db


def prepared(args: list[str], out: Path, monkeypatch, capsys) -> dict:
    code, _, err = run_cli(["prepare", *args, "-o", out, "--keep-single-speaker"], monkeypatch,
                           capsys)
    assert code == 0, err
    assert (out / "memory.sqlite").is_file()
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def search(data: Path, query: str, person: str, monkeypatch, capsys) -> str:
    code, out, err = run_cli(["memory", "search", data, query, "--with", person], monkeypatch,
                             capsys)
    assert code == 0, err
    return out


def test_two_messages_databases_keep_each_friends_secret_in_memory(tmp_path, monkeypatch, capsys):
    """A Mac's chat.db and a phone's sms.db, both numbered from 1: each friend's memories hold
    their own secret and never the other's."""
    mac = messages_db(tmp_path / "mac" / "chat.db", "jo@example.com", "walrus 5512")
    phone = messages_db(tmp_path / "phone" / "sms.db", "+14155550123", "walrus 8830")
    manifest = prepared([mac, phone, "--groups"], tmp_path / "ds", monkeypatch, capsys)
    by_secret = {}
    for sid, speaker in manifest["speakers"].items():
        if sid != manifest["me"]["id"] and speaker["messages"] >= 2:
            by_secret[sid] = speaker
    assert len(by_secret) == 2, manifest["speakers"]
    seen = set()
    for person in by_secret:
        out = search(tmp_path / "ds", "walrus keep it between us", person, monkeypatch, capsys)
        found = {code for code in ("5512", "8830") if code in out}
        assert len(found) == 1, (person, out)  # its own secret, never the other database's
        seen |= found
    assert seen == {"5512", "8830"}


def test_two_line_groups_of_one_title_keep_their_secrets_apart(tmp_path, monkeypatch, capsys):
    """Two LINE groups titled "Family" with different members, each with a "Sam": "Sam" and
    "Sam (2)" are two people, each reading only their own group."""
    a = line_group(tmp_path / "a.txt", ["Alex", "Jo", "Sam", "Kim"], "walrus 5512")
    b = line_group(tmp_path / "b.txt", ["Alex", "Mia", "Sam", "Lee"], "walrus 8830")
    manifest = prepared([a, b, "--me", "Alex", "--groups"], tmp_path / "ds", monkeypatch, capsys)
    labels = sorted(s["name"] for s in manifest["speakers"].values())
    assert "Sam" in labels and "Sam (2)" in labels
    seen = {}
    for typed in ("Jo", "Mia", "Sam", "Sam (2)", "Kim", "Lee"):
        out = search(tmp_path / "ds", "walrus don't tell the others", typed, monkeypatch, capsys)
        found = {code for code in ("5512", "8830") if code in out}
        assert len(found) == 1, (typed, out)
        seen[typed] = found.pop()
    assert seen["Jo"] == seen["Kim"] == "5512" and seen["Mia"] == seen["Lee"] == "8830"
    assert {seen["Sam"], seen["Sam (2)"]} == {"5512", "8830"}
