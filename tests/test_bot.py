"""`doppel bot` end to end against a fake Bot API on loopback: the CLI as a user runs it, the
echo backend in place of a model (replies: the last message, then "(N messages so far)")."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from builders import run_cli
from doppel import engines
from doppel.bot.handlers import REFUSAL
from doppel.infer.echo import EchoBackend
from fake_telegram import BOT_USER, FakeTelegram

SAM, JO, STRANGER = 111, 222, 333
GROUP = {"id": -100777, "type": "supergroup", "title": "friends"}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """RUN's default state file (RUN.bot.sqlite, next to it) lands in the test's folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def telegram():
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def token_file(tmp_path, telegram) -> Path:
    path = tmp_path / "bot-token"
    path.write_text(telegram.token + "\n", encoding="utf-8")
    return path


@pytest.fixture
def echo(monkeypatch) -> EchoBackend:
    """`doppel bot` loads this backend whatever RUN_DIR says (Alex is the run's "me")."""
    backend = EchoBackend(["Alex", "Sam", "Jo"])
    monkeypatch.setattr(engines, "load_engine", lambda *args: backend)
    return backend


def bot(telegram: FakeTelegram, args: list, drive, monkeypatch, capsys) -> tuple[int, str]:
    """Run `doppel bot ARGS` in this process until `drive()` is done, then SIGTERM it, as a
    service manager would. Returns (exit code, stderr)."""
    errors: list[BaseException] = []
    finished = threading.Event()
    before = len(telegram.calls)

    def polling() -> bool:  # this run's bot polls: it has its signal handlers
        return "getUpdates" in telegram.methods()[before:]

    def driver() -> None:
        try:
            telegram.wait_for(lambda: finished.is_set() or polling(), what="the bot to poll")
            if not finished.is_set():
                drive()
        except BaseException as error:
            errors.append(error)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # a late SIGTERM hits nothing
    thread = threading.Thread(target=driver, daemon=True)
    thread.start()
    try:
        code, _, err = run_cli(["bot", "--api-url", telegram.url, "--delay-per-char", "0",
                                *map(str, args)], monkeypatch, capsys)  # args win
    finally:
        finished.set()
        thread.join(60)
        signal.signal(signal.SIGTERM, previous)
    if errors:
        raise errors[0]
    assert telegram.token not in err
    return code, err


def test_friends_groups_and_strangers(telegram, token_file, echo, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "out" / "run"
    run_dir.mkdir(parents=True)

    def drive():
        telegram.say(SAM, "hey there", first_name="Samuel")
        assert telegram.wait_sent(SAM, 2) == ["hey there", "(1 messages so far)"]
        telegram.say(JO, "hi", first_name="Jo")
        assert telegram.wait_sent(JO, 2) == ["hi", "(1 messages so far)"]
        telegram.say(SAM, "/whoami", first_name="Samuel")
        telegram.say(JO, "/whoami", first_name="Jo")
        assert telegram.wait_sent(SAM, 3)[2] == f"I know you as Sam (Telegram id {SAM})."
        assert telegram.wait_sent(JO, 3)[2] == f"I know you as Jo (Telegram id {JO})."
        # a group: read everything, answer when mentioned, the mention itself left out
        telegram.say(JO, "dinner at 8?", first_name="Jo", chat=GROUP)
        telegram.say(SAM, "@twin_bot coming?", first_name="Samuel", chat=GROUP,
                     entities=[{"type": "mention", "offset": 0, "length": 9}])
        assert telegram.wait_sent(GROUP["id"], 2) == ["coming?", "(2 messages so far)"]
        twin_said = {"message_id": 1, "date": 0, "chat": GROUP, "from": BOT_USER, "text": "x"}
        telegram.say(JO, "sure", first_name="Jo", chat=GROUP, reply_to_message=twin_said)
        assert telegram.wait_sent(GROUP["id"], 4)[2:] == ["sure", "(5 messages so far)"]
        # a stranger gets one polite line, however often they write
        telegram.say(STRANGER, "hello?", first_name="Eve")
        telegram.say(STRANGER, "anyone?", first_name="Eve")
        telegram.say(SAM, "still there?", first_name="Samuel")
        telegram.wait_sent(SAM, 5)
        # updates the bot does not handle: a new type, an edit, a join; media become markers
        telegram.push(message_reaction={"chat": GROUP, "message_id": 1, "date": 0})
        telegram.push(edited_message={"message_id": 1, "date": 0, "chat": GROUP, "text": "x",
                                      "from": {"id": JO, "is_bot": False, "first_name": "Jo"}})
        telegram.say(JO, None, first_name="Jo", chat=GROUP,
                     new_chat_members=[{"id": 444, "is_bot": False, "first_name": "Kim"}])
        telegram.say(JO, None, first_name="Jo",
                     sticker={"file_id": "s", "file_unique_id": "s", "width": 1, "height": 1,
                              "is_animated": False, "is_video": False, "type": "regular",
                              "emoji": "😂"})
        assert telegram.wait_sent(JO, 5)[3:] == ["😂", "(4 messages so far)"]
        telegram.say(JO, None, first_name="Jo", caption="look",
                     photo=[{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}])
        assert telegram.wait_sent(JO, 7)[5:] == ["[photo] look", "(7 messages so far)"]
        # a poll without the fields this python-telegram-bot requires: skipped, not re-fetched
        telegram.say(JO, None, first_name="Jo", poll={"id": "p", "question": "pizza?"})
        telegram.say(JO, "still?", first_name="Jo")
        assert telegram.wait_sent(JO, 9)[7:] == ["still?", "(10 messages so far)"]

    code, err = bot(telegram, [run_dir, "--token-file", token_file, "--allow", f"{SAM},{JO}",
                               "--friend", f"{SAM}=Sam"], drive, monkeypatch, capsys)
    assert code == 0, err
    assert telegram.sent(SAM) == ["hey there", "(1 messages so far)",
                                  f"I know you as Sam (Telegram id {SAM}).",
                                  "still there?", "(4 messages so far)"]
    assert telegram.sent(STRANGER) == [REFUSAL.format(id=STRANGER)]
    assert err.count(f"refused user {STRANGER} (Eve)") == 1
    assert {"getMe", "deleteWebhook", "setMyCommands", "sendChatAction"} <= set(telegram.methods())
    assert "hey there" not in err  # texts are private unless --verbose
    state = tmp_path / "out" / "run.bot.sqlite"  # next to the run folder, never inside it
    assert stat.S_IMODE(state.stat().st_mode) == 0o600 and list(run_dir.iterdir()) == []
    assert echo.started == echo.finished == 8
    assert "cannot read (TypeError)" in err and "pizza" not in err


def test_reset_forgets_and_a_restart_remembers(telegram, token_file, echo, tmp_path,
                                               monkeypatch, capsys):
    args = ["RUN", "--token-file", token_file, "--allow", SAM, "--state", tmp_path / "s.db"]

    def first():
        telegram.say(SAM, "one")
        telegram.wait_sent(SAM, 2)
        telegram.wait_for(lambda: stored() == 3, what="the reply in the state file")

    def stored() -> int:
        with sqlite3.connect(tmp_path / "s.db") as db:
            return db.execute("SELECT count(*) FROM messages").fetchone()[0]

    def second():
        telegram.say(SAM, "two")
        assert telegram.wait_sent(SAM, 4)[2:] == ["two", "(4 messages so far)"]
        telegram.say(SAM, "/reset")
        assert telegram.wait_sent(SAM, 5)[4] == "I forgot this chat (6 messages)."
        telegram.say(SAM, "three")
        assert telegram.wait_sent(SAM, 7)[5:] == ["three", "(1 messages so far)"]

    assert bot(telegram, args, first, monkeypatch, capsys)[0] == 0
    assert bot(telegram, args, second, monkeypatch, capsys)[0] == 0
    rows = sqlite3.connect(tmp_path / "s.db").execute("SELECT speaker, text FROM messages")
    assert rows.fetchall() == [("Sam", "three"), ("Alex", "three"), ("Alex", "(1 messages so far)")]


def test_rate_limits_and_network_errors_are_waited_out(telegram, token_file, echo,
                                                       monkeypatch, capsys):
    def drive():
        telegram.fail_next("sendMessage", 429, retry_after=1)
        telegram.fail_next("sendMessage", 502)
        telegram.fail_next("getUpdates", 502)
        telegram.say(SAM, "hey")
        assert telegram.wait_sent(SAM, 2) == ["hey", "(1 messages so far)"]

    code, err = bot(telegram, ["RUN", "--token-file", token_file, "--allow", SAM], drive,
                    monkeypatch, capsys)
    assert code == 0, err
    attempts = [p for m, p in telegram.calls if m == "sendMessage"]
    assert [p["text"] for p in attempts] == ["hey", "hey", "hey", "(1 messages so far)"]
    assert attempts[1]["time"] - attempts[0]["time"] >= 1.0  # retry_after was respected
    assert "network error" in err and "polling Telegram failed (NetworkError: Bad Gateway)" in err
    assert "Traceback" not in err


def test_a_reply_longer_than_telegram_allows_is_split(telegram, token_file, echo,
                                                      monkeypatch, capsys):
    long = " ".join(f"word{i}" for i in range(900))  # 6,000 characters

    def drive():
        telegram.say(SAM, long)
        telegram.wait_sent(SAM, 3)

    assert bot(telegram, ["RUN", "--token-file", token_file, "--allow", SAM,
                          "--max-new-tokens", 2000], drive, monkeypatch, capsys)[0] == 0
    first, second, count = telegram.sent(SAM)
    assert len(first) <= 4096 and f"{first} {second}" == long and count == "(1 messages so far)"


def test_one_model_serves_chats_in_turn(telegram, token_file, monkeypatch, capsys):
    """A chat that keeps writing while the twin answers gets one more reply that reads it all;
    the friend who wrote meanwhile is answered next, not after every message."""
    slow = EchoBackend(["Alex", "Sam", "Jo"], delay_s=0.15)
    monkeypatch.setattr(engines, "load_engine", lambda *args: slow)

    def drive():
        telegram.say(SAM, "a b c d e f g h")
        telegram.wait_for(lambda: "sendChatAction" in telegram.methods(), what="typing")
        for n in range(1, 5):
            telegram.say(SAM, f"more {n}")
        telegram.say(JO, "me too", first_name="Jo")
        telegram.wait_sent(JO, 2)

    assert bot(telegram, ["RUN", "--token-file", token_file, "--allow", f"{SAM},{JO}"], drive,
               monkeypatch, capsys)[0] == 0
    assert slow.started == 3  # Sam, Sam again (all four new messages), Jo
    # the four came in while the twin was typing: its reply follows them in the history, so
    # the next reply reads all seven messages in the order Sam saw them (the echo repeats the
    # last one, the twin's own)
    assert telegram.sent(SAM) == ["a b c d e f g h", "(1 messages so far)",
                                  "(1 messages so far)", "(7 messages so far)"]
    order = [int(p["chat_id"]) for m, p in telegram.calls if m == "sendMessage"]
    assert order == [SAM, SAM, SAM, SAM, JO, JO]


def test_messages_are_paced_like_typing(telegram, token_file, echo, monkeypatch, capsys):
    def drive():
        telegram.say(SAM, "hi")
        telegram.wait_sent(SAM, 2)

    assert bot(telegram, ["RUN", "--token-file", token_file, "--allow", SAM,
                          "--delay-per-char", "0.05"], drive, monkeypatch, capsys)[0] == 0
    first, second = [p["time"] for m, p in telegram.calls if m == "sendMessage"]
    assert second - first >= len("(1 messages so far)") * 0.05


def test_the_twin_reads_the_last_max_history_turns(telegram, token_file, echo, monkeypatch,
                                                   capsys):
    def drive():
        telegram.say(SAM, "a")
        telegram.wait_sent(SAM, 2)
        with telegram.condition:  # one getUpdates batch: one turn before the twin replies
            telegram.say(SAM, "b")
            telegram.say(SAM, "c")
        telegram.wait_sent(SAM, 4)

    assert bot(telegram, ["RUN", "--token-file", token_file, "--allow", SAM, "--max-history", 1],
               drive, monkeypatch, capsys)[0] == 0
    assert telegram.sent(SAM)[2:] == ["c", "(2 messages so far)"]  # Sam's turn "b", "c" only


@pytest.mark.parametrize("mode, answered", [("always", True), ("off", False)])
def test_group_modes(mode, answered, telegram, token_file, echo, monkeypatch, capsys):
    def drive():
        telegram.say(SAM, "anyone hungry?", chat=GROUP)
        telegram.say(SAM, "ping")
        telegram.wait_sent(SAM, 2)

    assert bot(telegram, ["RUN", "--token-file", token_file, "--allow", SAM, "--groups", mode],
               drive, monkeypatch, capsys)[0] == 0
    assert telegram.sent(GROUP["id"]) == (["anyone hungry?", "(1 messages so far)"] if answered
                                          else [])


def test_verbose_logs_texts_and_the_twin_plays_whom_it_is_told(telegram, token_file, echo,
                                                               monkeypatch, capsys):
    def drive():
        telegram.say(SAM, "/start")
        telegram.say(SAM, "/help")
        telegram.say(SAM, "secret plans")
        telegram.wait_sent(SAM, 4)

    code, err = bot(telegram, ["RUN", "--token-file", token_file, "--allow", SAM, "-v",
                               "--as", "Sam"], drive, monkeypatch, capsys)
    assert code == 0, err
    start, help_text, echoed, _ = telegram.sent(SAM)
    # the twin plays Sam; the Telegram user also called Sam becomes "Sam (2)", as in a dataset
    assert start.startswith("Hi Sam (2)! I am Sam's twin") and echoed == "secret plans"
    assert help_text.splitlines()[2] == "/reset - forget this chat's history"
    assert "chat 111: Sam (2): secret plans" in err and "chat 111: Sam: (1 messages so far)" in err


# --- bad input: one line, exit 2 ---------------------------------------------------------------
def bad(args: list, monkeypatch, capsys, env: dict | None = None) -> str:
    monkeypatch.delenv("DOPPEL_BOT_TOKEN", raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    code, _, err = run_cli(["bot", *map(str, args)], monkeypatch, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_token_problems(tmp_path, monkeypatch, capsys, echo):
    assert "no bot token" in bad(["RUN"], monkeypatch, capsys)
    assert "does not exist" in bad(["RUN", "--token-file", tmp_path / "nope"], monkeypatch, capsys)
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    assert "is empty" in bad(["RUN", "--token-file", tmp_path / "empty"], monkeypatch, capsys)


def test_server_problems(telegram, token_file, tmp_path, monkeypatch, capsys, echo):
    wrong = tmp_path / "wrong-token"
    wrong.write_text("123456:WRONG", encoding="utf-8")
    err = bad(["RUN", "--token-file", wrong, "--api-url", telegram.url], monkeypatch, capsys)
    assert "rejected the token; copy it again from @BotFather" in err and "WRONG" not in err
    with FakeTelegram() as gone:
        closed = gone.url
    err = bad(["RUN", "--api-url", closed], monkeypatch, capsys,
              env={"DOPPEL_BOT_TOKEN": telegram.token})
    assert f"cannot reach the Bot API at {closed}" in err


def test_model_and_option_problems(telegram, token_file, tmp_path, monkeypatch, capsys, echo):
    common = ["--token-file", token_file, "--api-url", telegram.url]
    assert "cannot play 'Nobody'; choose --as from: Alex, Sam, Jo" in bad(
        ["RUN", *common, "--as", "Nobody"], monkeypatch, capsys)
    assert "--friend takes ID=NAME" in bad(["RUN", *common, "--friend", "Sam"], monkeypatch, capsys)
    assert "--allow takes numeric" in bad(["RUN", *common, "--allow", "@sam"], monkeypatch, capsys)
    code, _, err = run_cli(["bot", "RUN", *common, "--groups", "x"], monkeypatch, capsys)
    assert code == 2
    assert err.strip() == "error: --groups 'x': Input should be 'mention', 'always' or 'off'"
    assert "--api-url 'ftp://x'" in bad(["RUN", "--token-file", token_file, "--api-url",
                                         "ftp://x"], monkeypatch, capsys)
    monkeypatch.undo()  # the real loader: a folder that is no run
    (tmp_path / "empty-dir").mkdir()
    assert "empty-dir" in bad([tmp_path / "empty-dir", *common], monkeypatch, capsys)
