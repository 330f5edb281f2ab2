"""The generation engine: one model playing one named speaker, streaming messages as they form.

Prompts come from `chatformat` (the same ids training saw). Streaming uses a manual decode loop
with a KV cache, so a consumer that stops iterating (a closed web client) stops the model at once;
eval's replies run through the same continuous batch (`reply_many`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doppel.chatformat import IM_END, IM_START, partial_separator, split_messages
from doppel.infer.base import EngineBase, messages_of
from doppel.infer.sampling import SamplingParams
from doppel.runs import Loaded, load_run

if TYPE_CHECKING:
    from doppel.infer.batcher import Prefilled, Slot

History = list[tuple[str, str]]  # (speaker name, message text), oldest first


@dataclass
class Delta:
    """A piece of streamed text; message_index grows by one at each message boundary.

    The last Delta has done=True, empty text, and says why generation stopped ("stop": the persona
    handed the floor over; "length": max_new_tokens ran out; "error: ..." when the model step
    failed) and how many tokens it read and wrote.
    """

    text: str
    message_index: int
    done: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    memories: tuple = ()  # on the last Delta: the memories (doppel.memory.Memory) it read


class MessageStream:
    """Turns a growing block of generated text into per-message deltas.

    It re-splits the whole text each time (cheap for a reply), holding back a tail that could still
    become a separator, whitespace that split_messages would strip, and a half-decoded character,
    so the deltas of message i always add up to split_messages(final text)[i].
    """

    def __init__(self) -> None:
        self.sent: list[str] = []

    def feed(self, text: str, final: bool = False) -> list[Delta]:
        if not final:
            text = text.rstrip("\ufffd")  # a multi-byte character still being decoded
            text = text[: len(text) - partial_separator(text)]
        deltas = []
        for index, message in enumerate(split_messages(text)):
            if index == len(self.sent):
                self.sent.append("")
            done = self.sent[index]
            if message.startswith(done) and len(message) > len(done):
                deltas.append(Delta(message[len(done):], index))
                self.sent[index] = message
        return deltas

    @property
    def messages(self) -> list[str]:
        return list(self.sent)


class Detokenizer:
    """Token ids in, message deltas out; the last Delta carries the finish reason and usage.

    Decodes incrementally: each token decodes a short window (the tokens since the last complete
    character, plus a few before for context) instead of the whole reply; the final text is the
    whole reply decoded once, so the deltas always add up to it.
    """

    def __init__(self, tokenizer, prompt_tokens: int, memories: tuple = ()) -> None:
        self.tokenizer, self.prompt_tokens, self.memories = tokenizer, prompt_tokens, memories
        self.ids: list[int] = []
        self.messages = MessageStream()
        self.text = ""
        self.prefix = self.read = 0  # window start; end of the text already in self.text

    def push(self, token: int | None, reason: str | None) -> list[Delta]:
        """A new token (None at the end, with the reason generation stopped)."""
        if token is not None:
            self.ids.append(token)
            return self.messages.feed(self._grow())
        final = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        deltas = self.messages.feed(final, final=True)
        deltas.append(Delta("", max(len(self.messages.sent) - 1, 0), done=True,
                            finish_reason=reason, prompt_tokens=self.prompt_tokens,
                            completion_tokens=len(self.ids) + (reason == "stop"),
                            memories=self.memories))
        return deltas

    def _grow(self) -> str:
        decode = self.tokenizer.decode
        before = decode(self.ids[self.prefix:self.read], skip_special_tokens=True)
        after = decode(self.ids[self.prefix:], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before):]
            self.prefix, self.read = self.read, len(self.ids)
        return self.text


class Engine(EngineBase):
    """A loaded model (a run or a base model) that plays named speakers in a chat."""

    def __init__(self, loaded: Loaded, max_length: int | None = None) -> None:
        self.model = loaded.model
        context = getattr(self.model.config, "max_position_embeddings", None) or 2048
        super().__init__(loaded.tokenizer, loaded.info, context, max_length)
        self._batcher = None

    @classmethod
    def load(cls, spec: str | Path, merge: bool = False, dtype: Any = None,
             max_length: int | None = None) -> Engine:
        return cls(load_run(spec, merge=merge, dtype=dtype), max_length=max_length)

    # --- generation ---------------------------------------------------------------------
    def stream(self, history: Sequence[tuple[str, str]], respondent: str,
               params: SamplingParams | None = None,
               memories: Sequence | None = None) -> Iterator[Delta]:
        """Stream the respondent's next turn as message deltas; stops when it hands over.

        Runs a DecodeBatch of one inline: the same code the server's batch runs, so a reply is
        the same alone and among others. A consumer that stops iterating stops the model.
        `memories` None: the engine's recall finds them (see EngineBase.prepare).
        """
        from doppel.infer.batcher import DecodeBatch

        params = params or SamplingParams()
        prompt, used = self.prepare(history, respondent, params.max_new_tokens, memories)
        out = Detokenizer(self.tokenizer, len(prompt), used)
        pending: list[Delta] = []
        slot = self._slot(prompt, params, lambda token, reason: pending.extend(out.push(token,
                                                                                         reason)))
        batch = DecodeBatch(self.model, self.stop_ids)
        batch.join(slot)
        while True:
            yield from pending
            if pending and pending[-1].done:
                return
            pending.clear()
            batch.step()

    def start(self, history: Sequence[tuple[str, str]], respondent: str,
              params: SamplingParams, on_delta: Callable[[Delta], None],
              memories: Sequence | None = None):
        """Join the shared running batch (the server's path); returns a Slot to cancel.

        `on_delta` is called on the batch's worker thread; the last Delta has done=True (and
        carries the memories the prompt held).
        """

        prompt, used = self.prepare(history, respondent, params.max_new_tokens, memories)
        out = Detokenizer(self.tokenizer, len(prompt), used)

        def emit(token: int | None, reason: str | None) -> None:
            for delta in out.push(token, reason):
                on_delta(delta)

        return self.batcher().submit(self._slot(prompt, params, emit))

    def _slot(self, prompt: list[int], params: SamplingParams, emit) -> Slot:
        """A batch row for the prompt; its reply ends where the context window is full."""
        from doppel.infer import batcher

        room = max(self.max_length - len(prompt), 1)
        capped = params.replace(max_new_tokens=min(params.max_new_tokens, room))
        return batcher.Slot(prompt, capped, emit)

    def batcher(self, max_batch: int = 8):
        """The worker that batches concurrent requests (started on first use)."""
        from doppel.infer.batcher import Batcher

        if self._batcher is None:
            self._batcher = Batcher(self.model, self.stop_ids, max_batch)
        return self._batcher

    def reply_many(self, histories: Sequence[Sequence[tuple[str, str]]],
                   respondents: Sequence[str], params: SamplingParams | None = None,
                   max_batch: int = 16, advance: Callable[[int], None] | None = None,
                   ) -> list[list[str]]:
        """One reply per (history, respondent) through the engine's continuous batch (eval).

        A row whose reply is done leaves at once and a waiting prompt takes its place at the next
        step, so no row decodes padding while the batch's longest reply finishes (what a padded
        `generate` batch does). Reply i samples with its own generator seeded params.seed + i: it
        is the same whatever it was batched with, and the same as `reply` with that seed.
        """
        params = params or SamplingParams()
        if len(histories) != len(respondents):
            raise ValueError("reply_many needs one respondent per history")
        prompts = [self.prompt_ids(h, r, params.max_new_tokens)
                   for h, r in zip(histories, respondents, strict=True)]
        return self.reply_prompts(prompts, params, max_batch, advance)

    def reply_prompts(self, prompts: Sequence[list[int]], params: SamplingParams,
                      max_batch: int = 16, advance: Callable[[int], None] | None = None,
                      prefilled: Callable[[int], Prefilled] | None = None) -> list[list[str]]:
        """`reply_many` from prompt ids. `prefilled(i)`, when given, runs prompt i itself (eval
        scores the ranking test's candidates after it first), and its reply continues from it."""
        from collections import deque

        from doppel.infer.batcher import DecodeBatch

        deltas: list[list[Delta]] = [[] for _ in prompts]

        def slot(index: int) -> Slot:
            out = Detokenizer(self.tokenizer, len(prompts[index]))

            def emit(token: int | None, reason: str | None) -> None:
                deltas[index].extend(out.push(token, reason))
                if reason is not None and advance:
                    advance(1)

            seed = None if params.seed is None else params.seed + index
            return self._slot(prompts[index], params.replace(seed=seed), emit)

        # similar lengths join together: less left padding in the shared cache
        waiting = deque(sorted(range(len(prompts)), key=lambda i: len(prompts[i])))
        batch = DecodeBatch(self.model, self.stop_ids)
        while waiting or batch.rows:
            batch.drop_finished()
            if batch.rows:
                batch.step()
                batch.drop_finished()
            joining = [waiting.popleft()
                       for _ in range(min(len(waiting), max(max_batch, 1) - len(batch)))]
            if joining and prefilled:
                for index in joining:
                    batch.admit(slot(index), prefilled(index))
            elif joining:
                batch.join(*map(slot, joining))
        return [messages_of(found) for found in deltas]


__all__ = ["IM_END", "IM_START", "Delta", "Engine", "History", "MessageStream", "SamplingParams"]
