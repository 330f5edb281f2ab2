"""A weightless stand-in for Engine: it echoes the last message back, word by word.

Server, queue and browser tests drive the real HTTP paths with it in milliseconds; `delay_s`
makes each word take time, so tests can hold a generation open (queue full, timeouts, disconnects).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from doppel.infer.base import check_text
from doppel.infer.engine import Delta, SamplingParams


class EchoBackend:
    """Plays any of `personas`; its reply is the last message, then a count of messages so far."""

    def __init__(self, personas: Sequence[str] = ("Alex", "Sam"), delay_s: float = 0.0) -> None:
        self.personas = list(personas)
        self.delay_s = delay_s
        self.started = 0  # generations begun: tests check that a dropped client stopped its own
        self.finished = 0
        self.recall = None  # an infer.recall.Recall: the memories found ride on the last Delta

    @property
    def default_persona(self) -> str:
        return self.personas[0]

    def can_play(self, name: str) -> bool:
        return name in self.personas

    def default_partner(self, persona: str) -> str:
        return next((p for p in self.personas if p != persona), "Friend")

    def stream(self, history: Sequence[tuple[str, str]], respondent: str,
               params: SamplingParams | None = None,
               memories: Sequence | None = None) -> Iterator[Delta]:
        params = params or SamplingParams()
        if memories is None:
            memories = self.recall.find(history, respondent) if self.recall else ()
        self.started += 1
        last = history[-1][1].strip() if history else ""
        messages = [last or "...", f"({len(history)} messages so far)"]
        budget = params.max_new_tokens
        words = 0
        for index, message in enumerate(messages):
            for word in re.findall(r"\S+\s*", message):
                if words == budget:
                    yield Delta("", index, done=True, finish_reason="length",
                                prompt_tokens=len(history), completion_tokens=words)
                    return
                time.sleep(self.delay_s)
                words += 1
                yield Delta(word, index)
        self.finished += 1
        yield Delta("", len(messages) - 1, done=True, finish_reason="stop",
                    prompt_tokens=len(history), completion_tokens=words,
                    memories=tuple(memories))

    def start(self, history: Sequence[tuple[str, str]], respondent: str,
              params: SamplingParams, on_delta: Callable[[Delta], None],
              memories: Sequence | None = None) -> EchoGeneration:
        """Like Engine.start: text a tokenizer refuses fails here (DoppelError), then deltas
        arrive on another thread until done or cancelled."""
        check_text(history, respondent)
        generation = EchoGeneration()

        def run() -> None:
            steps = self.stream(history, respondent, params, memories)
            for delta in steps:
                if generation.cancelled:
                    steps.close()
                    return
                on_delta(delta)

        threading.Thread(target=run, daemon=True).start()
        return generation


class EchoGeneration:
    """The handle EchoBackend.start returns; cancel() stops it before its next word."""

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
