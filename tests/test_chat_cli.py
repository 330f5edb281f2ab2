"""`doppel chat`: the session's commands, the streamed terminal output, scripts and errors."""

from __future__ import annotations

import pytest

from builders import run_cli
from doppel import engines
from doppel.errors import DoppelError
from doppel.infer.chat import ChatSession
from doppel.infer.engine import SamplingParams

GREEDY = SamplingParams(temperature=0, max_new_tokens=20)


def test_session_keeps_history_and_switches_roles(scripted_engine):
    session = ChatSession.start(scripted_engine("hey\n>>> what's up?"), params=GREEDY)
    assert (session.persona, session.me) == ("Alex", "Sam")
    deltas = list(session.say("yo"))
    assert deltas[-1].done
    assert session.history == [("Sam", "yo"), ("Alex", "hey"), ("Alex", "what's up?")]
    assert session.command("/as Sam") == "the model plays Sam; you are Alex"
    session.command("/me Bob")
    session.command("/as Alex")
    assert (session.persona, session.me) == ("Alex", "Bob")  # a chosen /me sticks
    with pytest.raises(DoppelError, match="cannot play 'Nobody'"):
        session.command("/as Nobody")
    with pytest.raises(DoppelError, match="already plays Alex"):
        session.command("/me Alex")
    with pytest.raises(DoppelError, match="unknown command"):
        session.command("/dance")
    session.command("/reset")
    assert session.history == []


def test_saved_transcript_is_markdown(scripted_engine, tmp_path):
    session = ChatSession.start(scripted_engine("hey"), me="*Sam*", params=GREEDY)
    list(session.say("line one\nline two"))
    session.command(f"/save {tmp_path / 'chat.md'}")
    text = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert text.startswith("# Chat with Alex\n")
    assert "**\\*Sam\\*:** line one  \nline two  \n**Alex:** hey  \n" in text


@pytest.fixture
def cli_engine(scripted_engine, monkeypatch):
    """`doppel chat` loads this scripted engine whatever RUN_DIR says."""
    engine = scripted_engine("hey\n>>> what's up?")
    monkeypatch.setattr(engines, "load_engine", lambda *args: engine)
    return engine


def test_script_prints_one_line_per_message_with_the_speaker(cli_engine, tmp_path, monkeypatch,
                                                             capsys):
    script = tmp_path / "script.txt"
    script.write_text(f"hey\n/as Sam\nhow are you\n/save {tmp_path / 'out.md'}\n", encoding="utf-8")
    code, out, err = run_cli(["chat", "RUN", "--script", script, "--temperature", "0"],
                             monkeypatch, capsys)
    assert code == 0, err
    assert out.splitlines() == [
        "Sam: hey", "Alex: hey", "Alex: what's up?",
        "the model plays Sam; you are Alex",
        "Alex: how are you", "Sam: hey", "Sam: what's up?",
        f"transcript saved to {tmp_path / 'out.md'}",
    ]
    assert "**Sam:** what's up?" in (tmp_path / "out.md").read_text(encoding="utf-8")


def test_interactive_chat_reads_lines_until_quit(cli_engine, monkeypatch, capsys):
    typed = "hey\n/help\n/as Nobody\n/quit\n"
    code, out, err = run_cli(["chat", "RUN", "--me", "Bob"], monkeypatch, capsys, input=typed)
    assert code == 0, err
    assert "Alex: hey\nAlex: what's up?" in out
    assert "/save FILE" in out and "cannot play 'Nobody'" in out
    assert cli_engine.model.steps > 0


@pytest.mark.slow
def test_chat_script_on_a_run_folder(tiny_run_dir, tmp_path, monkeypatch, capsys):
    script = tmp_path / "script.txt"
    script.write_text("hey\nwhat's up?\n", encoding="utf-8")
    code, out, err = run_cli(["chat", tiny_run_dir, "--script", script, "--max-new-tokens", "6",
                              "--seed", "1"], monkeypatch, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Sam: hey" and "Sam: what's up?" in lines
    code, _, err = run_cli(["chat", tiny_run_dir, "--as", "Nobody", "--script", script],
                           monkeypatch, capsys)
    assert code == 2
    assert "cannot play 'Nobody'; choose one of: Alex, Sam" in err
    assert "Traceback" not in err
