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


def test_the_bot_remembers_in_each_friends_scope_only(telegram, memory_dataset, tmp_path,
                                                      monkeypatch, capsys):
    dataset = shutil.copytree(memory_dataset, tmp_path / "dataset")  # the bot adds to its index
    parrot = Parrot(["Alex", "Sam", "Jo"])

    def load(load_options, memory, say):  # the real memory options, a parrot for the model
        parrot.recall, note = open_recall(memory, RunInfo(base_model="parrot"))
        say(note)
        return parrot

    monkeypatch.setattr(engines, "load_engine", load)
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
