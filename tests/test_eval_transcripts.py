"""Scripted chats and batched replies, driven by a scripted stand-in for the engine."""

from __future__ import annotations

from doppel.eval.generate import reply_all
from doppel.eval.options import EvalOptions, EvalSampling
from doppel.eval.transcripts import markdown, plan_transcripts, run_chats


class EchoEngine:
    """Replies with who it plays and the last line it saw; records every batch and seed."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []  # (replies, batch size, seed)

    def reply_many(self, histories, respondents, params, max_batch=16, advance=None):
        self.calls.append((len(histories), max_batch, params.seed))
        if advance:
            advance(len(histories))
        return [(f"{who} answers {history[-1][1]}",) if history else ()
                for history, who in zip(histories, respondents, strict=True)]


def test_replies_come_back_in_order_with_the_options_batch_size_and_seed():
    """(Each reply's own seed and the refilled batch: tests/test_continuous_batching.py.)"""
    histories = [[("Sam", "x" * n)] for n in (5, 1, 9, 3, 7)]
    engine = EchoEngine()
    options = EvalOptions(batch_size=2, sampling=EvalSampling(seed=7))
    done: list[int] = []
    replies = reply_all(engine, histories, ["Alex"] * 5, options, done.append)
    assert replies == [[f"Alex answers {h[0][1]}"] for h in histories]
    assert engine.calls == [(5, 2, 7)] and sum(done) == 5


def test_chats_go_both_ways_in_every_language():
    chats = plan_transcripts("Alex", ["Sam", "Kim"], {"Alex", "Sam"}, ["en", "ru"])
    pairs = [(c.respondent, c.partner, c.language, c.trained) for c in chats]
    assert pairs == [("Alex", "Sam", "en", True), ("Alex", "Sam", "ru", True),
                     ("Sam", "Alex", "en", True), ("Sam", "Alex", "ru", True),
                     ("Alex", "Kim", "en", True), ("Alex", "Kim", "ru", True),
                     ("Kim", "Alex", "en", False), ("Kim", "Alex", "ru", False)]


def test_scripted_chat_feeds_each_reply_into_the_next_step():
    engine = EchoEngine()
    planned = plan_transcripts("Alex", ["Sam"], {"Alex"}, ["ru"])
    chat, untrained = run_chats(engine, planned, EvalOptions())
    assert chat.lines == [("Sam", "привет"), ("Alex", "Alex answers привет"),
                          ("Sam", "как дела?"), ("Alex", "Alex answers как дела?")]
    assert len(engine.calls) == 2  # one call per scripted line, all chats together
    assert engine.calls[0][0] == 2  # Sam's side is played too, though the run never learned it
    text = markdown({"run": [chat], "base": [chat]})
    assert "The model as Alex, with Sam (ru)" in text and "> **Sam:** привет" in text
    assert "not trained to play Sam" in markdown({"run": [untrained]})
    assert "no friend" in markdown({"run": []})
