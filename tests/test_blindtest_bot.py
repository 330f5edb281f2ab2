"""`/quiz` in `doppel bot` against the fake Bot API: a named friend answers their own items with
buttons into the blind test's store; a stranger gets one polite line, across restarts too."""

from __future__ import annotations

import json

import test_bot
from blindtest_builders import SECRET, copy_store
from doppel.blindtest.store import BlindStore
from doppel.bot.handlers import REFUSAL

SAM, JO, KIM, STRANGER = 111, 222, 444, 333
telegram, token_file, echo, in_tmp = (test_bot.telegram, test_bot.token_file, test_bot.echo,
                                      test_bot.in_tmp)


def answered(telegram) -> list[str]:
    """The toasts the bot showed for taps (answerCallbackQuery texts), in order."""
    with telegram.condition:
        return [p.get("text") for m, p in telegram.calls if m == "answerCallbackQuery"]


def test_quiz_in_telegram(prepared, telegram, token_file, echo, tmp_path, monkeypatch, capsys):
    _, _, store_path, _ = prepared
    store = copy_store(store_path, tmp_path / "quiz.sqlite")
    with BlindStore(store) as opened:
        sam_items = [item.id for item in opened.items("Sam")]
        jo_items = [item.id for item in opened.items("Jo") if item.id not in sam_items]

    def drive():
        telegram.say(SAM, "/quiz")
        first = telegram.wait_sent(SAM, 1)[0]
        assert first.startswith("Which one is really Alex's? (1 of 4)\n\n")
        assert first.endswith("\n\nTap the number of the real one.") and "\n2) " in first
        buttons = telegram.markups(SAM)[0]["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["1", "2"]
        assert buttons[1]["callback_data"] == f"bt:{sam_items[0]}:1"
        telegram.tap(SAM, buttons[1]["callback_data"])
        assert telegram.wait_sent(SAM, 2)[1].startswith("Which one is really Alex's? (2 of 4)")
        telegram.tap(SAM, buttons[0]["callback_data"])  # a second tap on the same item
        telegram.wait_sent(SAM, 3)
        telegram.tap(SAM, f"bt:{jo_items[0]}:0")  # Jo's item: not Sam's to answer
        telegram.tap(SAM, f"bt:{sam_items[1]}:7")  # no such candidate
        telegram.wait_for(lambda: len(answered(telegram)) == 4, what="4 toasts")
        telegram.say(KIM, "/quiz", first_name="Kim")  # allowed to chat, not named: no quiz
        assert "ask them to add --friend 444=YOUR_NAME" in telegram.wait_sent(KIM, 1)[0]
        telegram.say(JO, "/quiz", first_name="Jo")
        telegram.wait_sent(JO, 1)
        for _ in range(3):  # Sam answers the rest
            data = telegram.markups(SAM)[-1]["inline_keyboard"][0][0]["callback_data"]
            count = len(telegram.sent(SAM))
            telegram.tap(SAM, data)
            telegram.wait_sent(SAM, count + 1)
        assert telegram.sent(SAM)[-1] == "You have answered all 4. Thank you!"

    args = ["RUN", "--token-file", token_file, "--allow", f"{SAM},{JO},{KIM}", "--friend",
            f"{SAM}=Sam", "--friend", f"{JO}=Jo", "--quiz", store]
    code, err = test_bot.bot(telegram, args, drive, monkeypatch, capsys)
    assert code == 0, err
    assert answered(telegram) == ["Saved.", "You had answered this one already.",
                                       "This button is not part of your quiz.",
                                       "This button is not part of your quiz.",
                                       "Saved.", "Saved.", "Saved."]
    assert SECRET not in json.dumps(telegram.sent(SAM))  # only Sam's own chats
    with BlindStore(store) as opened:
        rows = [(a.judge, a.item, a.pick, a.via) for a in opened.answers()]
    assert rows[0] == ("Sam", sam_items[0], 1, "telegram")
    assert [r[1] for r in rows] == sam_items and {r[0] for r in rows} == {"Sam"}
    assert telegram.sent(JO)[0].startswith("Which one is really Alex's? (1 of 4)")


def test_a_stranger_gets_one_line_across_restarts(telegram, token_file, echo, tmp_path,
                                                  monkeypatch, capsys):
    args = ["RUN", "--token-file", token_file, "--allow", SAM, "--state", tmp_path / "s.db"]

    def first():
        telegram.say(STRANGER, "hello?", first_name="Eve")
        telegram.say(STRANGER, "/quiz", first_name="Eve")
        telegram.say(SAM, "hi")
        telegram.wait_sent(SAM, 2)

    def second():
        telegram.say(STRANGER, "hello again", first_name="Eve")
        telegram.say(STRANGER, "/start", first_name="Eve")
        telegram.say(SAM, "hi")
        telegram.wait_sent(SAM, 4)

    assert test_bot.bot(telegram, args, first, monkeypatch, capsys)[0] == 0
    assert test_bot.bot(telegram, args, second, monkeypatch, capsys)[0] == 0
    assert telegram.sent(STRANGER) == [REFUSAL.format(id=STRANGER)]
