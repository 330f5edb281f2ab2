"""`doppel bot` with memory, against the fake Bot API: the dataset's memories and the twin's own
past exchanges reach the friend they belong to and nobody else."""

from __future__ import annotations

import shutil

import pytest

from doppel import engines
from doppel.infer.recall import open_recall
from doppel.runs import RunInfo
from fake_telegram import FakeTelegram
from memory_builders import SECRET
from test_bot import bot as run_bot  # doppel bot in this process until drive() is done
from test_memory_use import QUESTION, Parrot

SAM, JO = 111, 222


@pytest.fixture
def telegram():
    with FakeTelegram() as fake:
        yield fake


def parrot_bot(memory_dataset, tmp_path, monkeypatch):
    """`doppel bot` loads a parrot in place of a model, with the real memory options; returns a
    copy of the memory dataset for it (the bot adds to its index)."""
    dataset = shutil.copytree(memory_dataset, tmp_path / "dataset")
    parrot = Parrot(["Alex", "Sam", "Jo"])

    def load(load_options, memory, say):
        parrot.recall, note = open_recall(memory, RunInfo(base_model="parrot"))
        say(note)
        return parrot

    monkeypatch.setattr(engines, "load_engine", load)
    return dataset


def test_the_bot_remembers_in_each_friends_scope_only(telegram, memory_dataset, tmp_path,
                                                      monkeypatch, capsys):
    dataset = parrot_bot(memory_dataset, tmp_path, monkeypatch)
    token = tmp_path / "token"
    token.write_text(telegram.token, encoding="utf-8")

    def drive():
        telegram.say(JO, QUESTION, first_name="Jo")
        assert SECRET not in telegram.wait_sent(JO, 1)[0]
        telegram.say(SAM, QUESTION, first_name="Samuel")
        assert SECRET in telegram.wait_sent(SAM, 1)[0]  # the control: Sam's own secret
        # what Sam tells the twin is remembered once it scrolls out of the history window...
        telegram.say(SAM, "my new bike is a purple Brompton", first_name="Samuel")
        telegram.wait_sent(SAM, 2)
        for n in range(3):
            telegram.say(SAM, f"random chatter number {n}", first_name="Samuel")
            telegram.wait_sent(SAM, 3 + n)
        telegram.say(SAM, "which bike did I get, the Brompton?", first_name="Samuel")
        assert "purple Brompton" in telegram.wait_sent(SAM, 6)[5]
        # ...in Sam's scope only
        telegram.say(JO, "does Sam ride a Brompton bike now?", first_name="Jo")
        assert "purple" not in telegram.wait_sent(JO, 2)[1]

    code, err = run_bot(telegram, ["RUN", "--token-file", token, "--allow", f"{SAM},{JO}",
                                   "--friend", f"{SAM}=Sam", "--friend", f"{JO}=Jo",
                                   "--max-history", "2", "--data", dataset,
                                   "--state", tmp_path / "bot.sqlite"], drive, monkeypatch,
                        capsys)
    assert code == 0, err
    assert f"memory on: {dataset}" in err
    assert "purple" not in " ".join(telegram.sent(JO)) and SECRET not in " ".join(
        telegram.sent(JO))


STRANGER_SAM, GROUP_SAM, KIM_A, KIM_B = 333, 666, 444, 555  # not friends: known by id only
GROUP = {"id": -100900, "type": "supergroup", "title": "pals"}  # allowed as a whole
FRIENDS_GROUP = {"id": -100901, "type": "supergroup", "title": "Sam and Jo"}
MENTION = {"entities": [{"type": "mention", "offset": 0, "length": 9}]}  # "@twin_bot"


def test_a_name_never_grants_memories_in_the_bot(telegram, memory_dataset, tmp_path, monkeypatch,
                                                 capsys):
    """Scopes are Telegram user ids: a stranger, or a member of an allowed group, called Sam
    is not the --friend Sam; two strangers called Kim never share what they told the twin; a
    group where only Sam spoke lately still has Jo in it."""
    dataset = parrot_bot(memory_dataset, tmp_path, monkeypatch)
    token = tmp_path / "token"
    token.write_text(telegram.token, encoding="utf-8")
    locker = "what is my locker code, the walrus one?"

    def drive():
        telegram.say(STRANGER_SAM, QUESTION, first_name="Sam")  # allowed, but not the friend
        assert SECRET not in telegram.wait_sent(STRANGER_SAM, 1)[0]
        telegram.say(STRANGER_SAM, "/whoami", first_name="Sam")  # names still show
        assert telegram.wait_sent(STRANGER_SAM, 2)[1] == (
            f"I know you as Sam (Telegram id {STRANGER_SAM}).")
        telegram.say(GROUP_SAM, f"@twin_bot {QUESTION}", first_name="Sam", chat=GROUP, **MENTION)
        assert SECRET not in telegram.wait_sent(GROUP["id"], 1)[0]
        # two strangers called Kim
        telegram.say(KIM_A, "my locker code is walrus 8812", first_name="Kim")
        telegram.wait_sent(KIM_A, 1)
        for n in range(3):  # out of the history window: only memory holds it now
            telegram.say(KIM_A, f"random chatter number {n}", first_name="Kim")
            telegram.wait_sent(KIM_A, 2 + n)
        telegram.say(KIM_B, locker, first_name="Kim")
        assert "8812" not in telegram.wait_sent(KIM_B, 1)[0]
        telegram.say(KIM_A, locker, first_name="Kim")
        assert "8812" in telegram.wait_sent(KIM_A, 5)[4]  # the control: Kim's own exchange
        # Sam and Jo's group: Jo spoke once, the twin answered, then only Sam (the window of
        # two turns holds the twin's and Sam's)
        telegram.say(JO, "@twin_bot hi all", first_name="Jo", chat=FRIENDS_GROUP, **MENTION)
        telegram.wait_sent(FRIENDS_GROUP["id"], 1)
        for n in range(3):
            telegram.say(SAM, f"more chatter {n}", first_name="Samuel", chat=FRIENDS_GROUP)
        telegram.say(SAM, f"@twin_bot {QUESTION}", first_name="Samuel", chat=FRIENDS_GROUP,
                     **MENTION)
        assert SECRET not in telegram.wait_sent(FRIENDS_GROUP["id"], 2)[1]
        telegram.say(SAM, QUESTION, first_name="Samuel")
        assert SECRET in telegram.wait_sent(SAM, 1)[0]  # the control: Sam alone

    allow = ",".join(map(str, (SAM, JO, STRANGER_SAM, KIM_A, KIM_B, GROUP["id"],
                               FRIENDS_GROUP["id"])))
    code, err = run_bot(telegram, ["RUN", "--token-file", token, "--allow", allow,
                                   "--friend", f"{SAM}=Sam", "--friend", f"{JO}=jo",
                                   "--max-history", "2", "--data", dataset,
                                   "--state", tmp_path / "bot.sqlite"], drive, monkeypatch,
                        capsys)
    assert code == 0, err
    for chat in (STRANGER_SAM, GROUP["id"], KIM_B, FRIENDS_GROUP["id"]):
        assert SECRET not in " ".join(telegram.sent(chat)), chat
    assert "8812" not in " ".join(telegram.sent(KIM_B))


def test_a_friend_name_that_places_nobody_stops_the_bot(telegram, memory_dataset, tmp_path,
                                                        monkeypatch, capsys):
    parrot_bot(memory_dataset, tmp_path, monkeypatch)
    token = tmp_path / "token"
    token.write_text(telegram.token, encoding="utf-8")
    code, err = run_bot(telegram, ["RUN", "--token-file", token, "--allow", str(SAM),
                                   "--friend", f"{SAM}=Samantha", "--data", memory_dataset,
                                   "--state", tmp_path / "bot.sqlite"], lambda: None,
                        monkeypatch, capsys)
    assert code == 2
    assert f"--friend {SAM}=Samantha 'Samantha' matches nobody in the data" in err
    assert "Traceback" not in err
