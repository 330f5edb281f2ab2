"""Continuous batching: a reply is the same alone and inside a batch; cancelling frees the row."""

from __future__ import annotations

import threading

import pytest

from doppel.infer.batcher import Batcher, DecodeBatch, Slot
from doppel.infer.engine import Delta, Engine, SamplingParams

GREEDY = SamplingParams(temperature=0, max_new_tokens=12)
HISTORIES = [[("Sam", "hey" + " there" * i), ("Alex", "yo"), ("Sam", f"question {i}?")]
             for i in range(8)]


@pytest.fixture(scope="module")
def tiny_engine(tiny_run_dir):
    return Engine.load(tiny_run_dir, merge=True)


def watch_batch_sizes(monkeypatch) -> list[int]:
    """Record how many rows every decode step ran."""
    sizes: list[int] = []
    step = DecodeBatch.step

    def counted(self):
        sizes.append(len(self.rows))
        return step(self)

    monkeypatch.setattr(DecodeBatch, "step", counted)
    return sizes


def run_together(engine: Engine, params: list[SamplingParams]) -> list[list[Delta]]:
    """Start all eight at once, the second half only once the first half is decoding."""
    results: list[list[Delta]] = [[] for _ in params]
    finished = threading.Semaphore(0)

    def collector(index: int):
        def on_delta(delta: Delta) -> None:
            results[index].append(delta)
            if delta.done:
                finished.release()
        return on_delta

    def start(index: int) -> None:
        engine.start(HISTORIES[index], "Alex", params[index], collector(index))

    first_token = threading.Event()
    late = list(range(4, len(params)))

    def starter(delta: Delta) -> None:  # joins the rest mid-run, from the first token on
        collector(0)(delta)
        if not first_token.is_set():
            first_token.set()
            for index in late:
                start(index)

    engine.start(HISTORIES[0], "Alex", params[0], starter)
    for index in range(1, 4):
        start(index)
    for _ in params:
        assert finished.acquire(timeout=300)
    return results


def test_greedy_and_seeded_replies_are_the_same_alone_and_in_a_batch_of_eight(tiny_engine,
                                                                              monkeypatch):
    params = [GREEDY if i % 2 == 0 else SamplingParams(max_new_tokens=12, seed=i)
              for i in range(8)]
    alone = [list(tiny_engine.stream(HISTORIES[i], "Alex", params[i])) for i in range(8)]
    sizes = watch_batch_sizes(monkeypatch)
    together = run_together(tiny_engine, params)
    assert max(sizes) >= 5  # they really ran in one batch, late joiners included
    assert together == alone
    assert all(deltas[-1].done and deltas[-1].completion_tokens for deltas in together)


@pytest.mark.slow
def test_embedded_model_greedy_alone_equals_greedy_in_a_batch_of_eight():
    engine = Engine.load("smollm2-135m")
    params = [GREEDY.replace(max_new_tokens=16)] * 8
    alone = [list(engine.stream(HISTORIES[i], "Alex", params[i])) for i in range(8)]
    assert run_together(engine, params) == alone


def test_a_cancelled_request_leaves_the_batch_within_one_decode_step(tiny_engine):
    batcher = Batcher(tiny_engine.model, tiny_engine.stop_ids, max_batch=8)
    batcher.batch.stop_ids = set()  # both run to their max_new_tokens unless cancelled
    decoding, other_done = threading.Event(), threading.Event()
    long = Slot(tiny_engine.prompt_ids(HISTORIES[0], "Alex", 200),
                GREEDY.replace(max_new_tokens=200),
                lambda token, reason: decoding.set())
    other = Slot(tiny_engine.prompt_ids(HISTORIES[1], "Alex", 60),
                 GREEDY.replace(max_new_tokens=60),
                 lambda token, reason: reason and other_done.set())
    batcher.submit(long)
    batcher.submit(other)
    assert decoding.wait(60)
    long.cancel()
    at_cancel = len(long.generated)
    assert other_done.wait(120)
    assert len(long.generated) - at_cancel <= 1  # the step in flight, no more
    assert long not in batcher.batch.rows and len(long.generated) < 200
    batcher.close()


def test_a_failing_consumer_loses_only_its_own_row(tiny_engine):
    batcher = Batcher(tiny_engine.model, tiny_engine.stop_ids, max_batch=8)
    done = threading.Event()

    def broken(token, reason):
        raise RuntimeError("event loop is closed")

    tokens: list[int | None] = []

    def healthy(token, reason):
        tokens.append(token)
        if reason:
            done.set()

    prompt = tiny_engine.prompt_ids(HISTORIES[0], "Alex", 8)
    batcher.submit(Slot(prompt, GREEDY.replace(max_new_tokens=8), broken))
    batcher.submit(Slot(prompt, GREEDY.replace(max_new_tokens=8), healthy))
    assert done.wait(120)
    assert tokens[-1] is None and batcher.thread.is_alive()
    batcher.close()


def test_reply_many_refills_rows_and_each_reply_is_its_own(tiny_engine, monkeypatch):
    """Eval's path: 8 replies through a batch of 3; each equals `reply` alone with its seed."""
    sizes = watch_batch_sizes(monkeypatch)
    params = SamplingParams(max_new_tokens=12, seed=5)
    done: list[int] = []
    many = tiny_engine.reply_many(HISTORIES, ["Alex"] * 8, params, max_batch=3,
                                  advance=done.append)
    assert sum(done) == 8 and max(sizes) == 3
    alone = [tiny_engine.reply(h, "Alex", params.replace(seed=5 + i))
             for i, h in enumerate(HISTORIES)]
    assert many == alone
    greedy = tiny_engine.reply_many(HISTORIES, ["Alex"] * 8, GREEDY, max_batch=8)
    assert greedy == [tiny_engine.reply(h, "Alex", GREEDY) for h in HISTORIES]
