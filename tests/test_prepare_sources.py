"""`doppel prepare` over several exports of one person: one dataset, "me" in each app, friends
merged across apps, the speaker list, and owner-only output."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from builders import run_cli
from doppel.data.dataset import load_dataset

FIXTURES = Path(__file__).parent / "fixtures"
WHATSAPP = FIXTURES / "whatsapp" / "android-en-us-12h.txt"
DISCORD = FIXTURES / "discord" / "dm-sam.json"
MESSENGER = FIXTURES / "meta" / "facebook-alex"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
TELEGRAM_DM = SHARED / "telegram" / "chat_analytics_dm.json"


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory) -> Path:
    from doppel.sample.generator import write_sample_export

    return write_sample_export(tmp_path_factory.mktemp("sample") / "export", seed=0)


def _source_of(speaker_id: str) -> str:
    return speaker_id.split(":", 1)[0] if ":" in speaker_id else "telegram"


def test_four_apps_make_one_dataset(sample_export, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "ds"
    code, stdout, err = run_cli(
        ["prepare", str(sample_export), str(WHATSAPP), str(DISCORD), str(MESSENGER), "-o",
         str(out), "--me", "Alex", "--me", "Alex Doe", "--gap", "2h", "-q"], monkeypatch, capsys)
    assert code == 0, err
    assert "sources" in stdout and "whatsapp:" in stdout
    dataset = load_dataset(out)
    manifest = dataset.manifest
    owner = manifest["exports"][0]["owner"][0]
    assert dataset.me_id == owner and dataset.me_name == "Alex Morgan"
    assert [e["source"] for e in manifest["exports"]] == ["telegram", "whatsapp", "discord",
                                                          "messenger"]
    sources = manifest["counts"]["sources"]
    assert set(sources) == {"telegram", "whatsapp", "discord", "messenger"}
    assert all(row["messages_kept"] > 0 for row in sources.values())
    assert sum(row["messages_kept"] for row in sources.values()) == \
        manifest["counts"]["messages_kept"]
    for conversation in dataset.conversations():  # never two sources in one conversation
        chat_source = _source_of(conversation.chat_id)
        others = {_source_of(m.speaker_id) for m in conversation.messages
                  if m.speaker_id != owner}
        assert others <= {chat_source}, conversation.id
    me_texts = {m.text for c in dataset.conversations() for m in c.messages
                if m.speaker_id == owner}
    assert {"hi\nhow are you?\n\nstill there?", "morning Sam", "hi Anna!"} <= me_texts
    assert "## Sources" in (out / "report.md").read_text(encoding="utf-8")
    # owner-only: the folder and everything in it
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_list_speakers_writes_nothing(sample_export, tmp_path, monkeypatch, capsys) -> None:
    before = sorted(os.listdir(tmp_path))
    code, stdout, err = run_cli(["prepare", str(WHATSAPP), str(DISCORD), "--list-speakers"],
                                monkeypatch, capsys)
    assert code == 0, err
    lines = [line.split("\t") for line in stdout.strip().splitlines()]
    assert all(len(parts) == 3 for parts in lines)
    counts = [int(parts[1]) for parts in lines]
    assert counts == sorted(counts, reverse=True)
    assert ["Anna Lee", "4", "whatsapp"] in lines and ["Alex", "3", "whatsapp"] in lines
    assert ["Sam", "4", "discord"] in lines and not any(p[0] == "Helper" for p in lines)
    assert sorted(os.listdir(tmp_path)) == before


def test_without_me_the_error_names_the_top_speakers(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(WHATSAPP), "-o", str(out)], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--me" in err and "Anna Lee (4 messages)" in err  # a name: what --me takes
    assert not out.exists()
    code, _, err = run_cli(["prepare", str(WHATSAPP), "-o", str(out), "--me", "Nobody"],
                           monkeypatch, capsys)
    assert code == 2 and "matches no speaker" in err and not out.exists()


@pytest.mark.skipif(not TELEGRAM_DM.exists(), reason="shared Telegram fixtures are not present")
def test_identities_merge_a_friend_across_apps(tmp_path, monkeypatch, capsys) -> None:
    whatsapp = tmp_path / "WhatsApp Chat with Bobby.txt"
    whatsapp.write_text("14/03/2024, 10:00 - Bobby: hey, still on for tonight?\n"
                        "14/03/2024, 10:02 - Alice A.: yes!\n"
                        "14/03/2024, 10:03 - Bobby: great\n", encoding="utf-8")
    identities = tmp_path / "people.yaml"
    identities.write_text("- name: Alice\n  me: true\n  telegram: user300000000\n"
                          "  whatsapp: Alice A.\n"
                          "- name: Bob\n  telegram: '700000000'\n  whatsapp: [Bobby]\n",
                          encoding="utf-8")
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(TELEGRAM_DM), str(whatsapp), "-o", str(out),
                            "--identities", str(identities), "-q"], monkeypatch, capsys)
    assert code == 0, err
    dataset = load_dataset(out)
    assert dataset.me_id == "user300000000" and dataset.speakers == {
        "user300000000": "Alice", "user700000000": "Bob"}
    chats = dataset.manifest["speakers"]["user700000000"]["chats"]
    (whatsapp_chat,) = [c["id"] for c in dataset.manifest["chats"] if c["source"] == "whatsapp"]
    assert sorted(chats) == ["user700000000", whatsapp_chat]
    assert dataset.manifest["speakers"]["user700000000"]["aliases"] == [
        "Bob", "Bobby", "user700000000", f"{whatsapp_chat}/Bobby"]
    whatsapp_turns = [(m.speaker_id, m.speaker, m.text) for c in dataset.conversations()
                      if c.chat_id == whatsapp_chat for m in c.messages]
    assert whatsapp_turns == [("user700000000", "Bob", "hey, still on for tonight?"),
                              ("user300000000", "Alice", "yes!"),
                              ("user700000000", "Bob", "great")]


def test_bad_identities_file_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    bad = tmp_path / "people.yaml"
    bad.write_text("me: [unclosed\n", encoding="utf-8")
    code, _, err = run_cli(["prepare", str(WHATSAPP), "-o", str(tmp_path / "ds"),
                            "--identities", str(bad)], monkeypatch, capsys)
    assert code == 2 and "not valid YAML" in err and not (tmp_path / "ds").exists()


def test_an_export_whose_chats_are_all_empty(tmp_path, monkeypatch, capsys) -> None:
    export = tmp_path / "result.json"
    export.write_text(json.dumps({
        "personal_information": {"user_id": 1, "first_name": "Alex"},
        "chats": {"list": [{"name": "Sam", "type": "personal_chat", "id": 2, "messages": []},
                           {"name": "Kim", "type": "personal_chat", "id": 3,
                            "messages": []}]}}), encoding="utf-8")
    code, _, err = run_cli(["prepare", str(export), "-o", str(tmp_path / "ds")], monkeypatch,
                           capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no chats with messages" in err
    assert "Traceback" not in err and not (tmp_path / "ds").exists()


def test_readme_commands_for_other_apps_run_as_shown(sample_export, tmp_path) -> None:
    """The README's multi-app lines, typed as a user would, from a folder holding out/sample and
    the fixtures they name."""
    import shlex
    import subprocess
    import sys

    from test_readme import readme_commands

    shown = [c.doppel_args for c in readme_commands() if c.words[:2] == ("doppel", "prepare")
             and any(arg.startswith("tests/fixtures/") for arg in c.words)]
    assert len(shown) >= 3
    (tmp_path / "out").mkdir()
    folder = sample_export if sample_export.is_dir() else sample_export.parent
    (tmp_path / "out" / "sample").symlink_to(folder)
    (tmp_path / "tests").symlink_to(FIXTURES.parent)
    for command in shown:
        done = subprocess.run([sys.executable, "-m", "doppel", *command, "-q"] if "-o" in command
                              else [sys.executable, "-m", "doppel", *command], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (shlex.join(command), done.stderr)
        if "--list-speakers" in command:
            assert "Alex Morgan\t" in done.stdout and "\twhatsapp" in done.stdout
        else:
            out = tmp_path / command[command.index("-o") + 1]
            assert load_dataset(out).manifest["counts"]["messages_kept"] > 0


def test_discord_bots_are_left_out_unless_asked(tmp_path, monkeypatch, capsys) -> None:
    for flags, bot_kept in (([], False), (["--bots"], True)):
        out = tmp_path / f"ds{len(flags)}"
        code, _, err = run_cli(["prepare", str(DISCORD), "-o", str(out), "--me", "Alex",
                                "--gap", "1d", "-q", *flags], monkeypatch, capsys)
        assert code == 0, err
        manifest = load_dataset(out).manifest
        assert ("discord:999" in manifest["speakers"]) is bot_kept
        assert manifest["counts"]["dropped"].get("bot", 0) == (0 if bot_kept else 1)


def test_masking_gaps_and_splits_work_for_whatsapp(tmp_path, monkeypatch, capsys) -> None:
    """The data steps after the reader are the same for every source."""
    lines = []
    for day in range(1, 29):
        lines += [f"{day:02d}/02/2024, 20:00 - Sam: day {day}: call me at +1 415 555 2671",
                  f"{day:02d}/02/2024, 20:01 - Alex: ok, or mail alex@example.com",
                  f"{day:02d}/02/2024, 20:02 - Sam: deal"]
    export = tmp_path / "WhatsApp Chat with Sam.txt"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(export), "-o", str(out), "--me", "Alex", "-q"],
                           monkeypatch, capsys)
    assert code == 0, err
    dataset = load_dataset(out)
    counts = dataset.manifest["counts"]
    assert counts["masked"]["phone"] == 28 and counts["masked"]["email"] == 28
    assert counts["conversations"] == {"train": 25, "val": 3}  # a day apart: one each
    texts = [m.text for c in dataset.conversations() for m in c.messages]
    assert "day 1: call me at [phone]" in texts and "ok, or mail [email]" in texts
    assert 60 <= dataset.manifest["params"]["gap_seconds"] <= 86400


def test_me_keeps_the_owners_name_whatever_the_order(sample_export, tmp_path, monkeypatch,
                                                     capsys) -> None:
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(WHATSAPP), str(sample_export), "-o", str(out),
                            "--me", "Alex", "-q"], monkeypatch, capsys)
    assert code == 0, err
    dataset = load_dataset(out)
    assert dataset.me_name == "Alex Morgan" and dataset.me_id.startswith("user")
    assert "whatsapp:Alex" not in dataset.speakers


def test_a_phone_number_as_a_name_is_masked_in_names_and_ids(tmp_path, monkeypatch,
                                                             capsys) -> None:
    number = "+49 151 23456789"
    export = tmp_path / "chat.txt"
    export.write_text(f"13/03/2024, 10:15 - \u202a{number}\u202c: hi, who is this?\n"
                      "13/03/2024, 10:16 - Alex: it's Alex\n", encoding="utf-8")
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(export), "-o", str(out), "--me", "Alex", "-q"],
                           monkeypatch, capsys)
    assert code == 0, err
    written = (out / "conversations.jsonl").read_text() + (out / "manifest.json").read_text()
    assert "23456789" not in written and "[phone]" in written
    code, stdout, _ = run_cli(["prepare", str(export), "--list-speakers"], monkeypatch, capsys)
    assert f"{number}\t1\twhatsapp" in stdout  # the list shows the number, to find people
