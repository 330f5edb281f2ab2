"""`doppel prepare` end to end: the sample export, a real single-chat fixture, bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from builders import run_cli
from doppel.data.dataset import load_dataset

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "telegram"
DM = FIXTURES / "chat_analytics_dm.json"


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory) -> Path:
    from doppel.sample.generator import write_sample_export

    return write_sample_export(tmp_path_factory.mktemp("sample") / "export", seed=0)


def test_prepare_the_sample_export(sample_export, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ds"
    code, stdout, _ = run_cli(["prepare", str(sample_export), "-o", str(out), "-q"],
                              monkeypatch, capsys)
    assert code == 0
    assert "conversations" in stdout and str(out) in stdout
    dataset = load_dataset(out)
    manifest = dataset.manifest
    owner_id = manifest["export"]["owner"][0]
    assert dataset.me_id == owner_id and dataset.me_id in dataset.speakers
    assert manifest["export"]["layout"] and manifest["fingerprint"].startswith("sha256:")
    counts = manifest["counts"]
    assert counts["chats_kept"] >= 5 and counts["chats_skipped"].get("group") == 1
    assert counts["conversations"]["train"] > 5 * counts["conversations"]["val"] > 0
    assert counts["messages_kept"] > 2000
    assert sum(counts["masked"].values()) > 0
    assert set(manifest["params"]) >= {"gap", "gap_seconds", "gap_reason", "val_fraction", "mask"}
    texts = [m.text for c in dataset.conversations() for m in c.messages]
    assert len(texts) == counts["messages_kept"]
    assert any("[photo]" in t for t in texts)
    names = set(dataset.speakers.values())
    assert len(names) == len(dataset.speakers)  # unique names
    for plot in ("gaps", "chats", "speakers", "lengths", "conversation_sizes", "drops"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 1000
    assert "Session gap" in (out / "report.md").read_text()

    # again without --force: refused, folder untouched
    before = (out / "manifest.json").read_bytes()
    code, _, err = run_cli(["prepare", str(sample_export), "-o", str(out)], monkeypatch, capsys)
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    assert (out / "manifest.json").read_bytes() == before

    # --force with --groups: replaced, and now the group is in
    code, _, _ = run_cli(["prepare", str(sample_export), "-o", str(out), "--force", "--groups",
                          "-q"], monkeypatch, capsys)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["chats_skipped"] == {}
    assert any(c["type"] != "personal_chat" and c["kept"] for c in manifest["chats"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders


@pytest.mark.skipif(not DM.exists(), reason="shared Telegram fixtures are not present")
def test_single_chat_export_needs_me(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ds"
    code, _, err = run_cli(["prepare", str(DM), "-o", str(out)], monkeypatch, capsys)
    assert code == 2 and "--me" in err
    assert "Alice (user300000000, 4 messages)" in err and "Bob (user700000000" in err
    assert not out.exists()
    code, _, err = run_cli(["prepare", str(DM), "-o", str(out), "--me", "300000000", "-q"],
                           monkeypatch, capsys)
    assert code == 0, err
    dataset = load_dataset(out)
    assert dataset.me_id == "user300000000" and dataset.me_name == "Alice"
    (conversation,) = dataset.conversations()
    assert [(m.speaker, m.text) for m in conversation.messages] == [
        ("Bob", "world?"), ("Alice", "blah blah")]


def test_bad_inputs_exit_2_with_one_line(tmp_path, monkeypatch, capsys):
    not_json = tmp_path / "result.json"
    not_json.write_text("this is not json at all", encoding="utf-8")
    for export in (tmp_path / "missing.json", not_json):
        code, out, err = run_cli(["prepare", str(export), "-o", str(tmp_path / "ds")],
                                 monkeypatch, capsys)
        assert code == 2, (out, err)
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
    code, _, err = run_cli(["prepare", str(not_json), "-o", str(tmp_path / "ds"),
                            "--gap", "soon"], monkeypatch, capsys)
    assert code == 2 and "--gap" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_console_script_reports_errors_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "doppel", "prepare", str(tmp_path / "nope"),
                           "-o", str(tmp_path / "ds")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_an_export_without_the_users_messages_is_one_line_and_no_output(sample_export, tmp_path,
                                                                         monkeypatch, capsys):
    data = json.loads(sample_export.read_text(encoding="utf-8"))
    me = f"user{data['personal_information']['user_id']}"
    for chat in data["chats"]["list"]:
        chat["messages"] = [m for m in chat["messages"] if m.get("from_id") != me]
    export = tmp_path / "result.json"
    export.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = run_cli(["prepare", str(export), "-o", str(tmp_path / "ds"), "-q"],
                           monkeypatch, capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "Traceback" not in err
    assert "no messages from you (Alex Morgan" in err
    assert not (tmp_path / "ds").exists()
