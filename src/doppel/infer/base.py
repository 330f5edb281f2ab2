"""What every engine shares, whatever computes its tokens (torch, llama.cpp): who plays whom, and
the prompt ids in doppel's chat format, so two engines given one history read the same ids."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from doppel.chatformat import (
    MEMORY_SHARE,
    ChatEncoder,
    clean_name,
    group_turns,
    strip_chat_tokens,
)
from doppel.errors import DoppelError
from doppel.infer.sampling import SamplingParams
from doppel.runs import RunInfo

BASE_PERSONA = "Me"  # names a base model plays and talks to when nobody says otherwise
BASE_PARTNER = "Friend"


class EngineBase:
    """A model of a run (its info and tokenizer) that plays named speakers in a chat.

    Subclasses add `stream(history, respondent, params) -> Iterator[Delta]` and `start(...)`.
    """

    def __init__(self, tokenizer, info: RunInfo, context: int, max_length: int | None) -> None:
        self.tokenizer, self.info = tokenizer, info
        self.encoder = ChatEncoder(tokenizer)
        self.max_length = min(max_length or info.max_length, context)
        self.stop_ids = sorted({self.encoder.im_end_id, self.encoder.im_start_id})
        self.personas: list[str] = list(info.speakers)
        self._partners = _partner_counts(info)
        self.recall = None  # infer.recall.Recall: the dataset's memories (load_engine sets it)

    # --- who plays whom -------------------------------------------------------------------
    @property
    def me(self) -> str | None:
        """The exporting user's name (None for a base model)."""
        return (self.info.me or {}).get("name")

    @property
    def default_persona(self) -> str:
        return self.me or (self.personas[0] if self.personas else BASE_PERSONA)

    def can_play(self, name: str) -> bool:
        """A run plays the speakers in its data; a base model plays any name."""
        return not self.personas or name in self.personas

    def default_partner(self, persona: str) -> str:
        """Who is at the keyboard by default: the persona's most frequent partner."""
        if self.me and persona != self.me:
            return self.me
        counts = self._partners.get(persona, {})
        if counts:
            return max(counts, key=lambda name: counts[name])
        others = [name for name in self.personas if name != persona]
        if others:
            return others[0]
        return BASE_PARTNER if persona != BASE_PARTNER else BASE_PERSONA

    # --- prompts and replies ------------------------------------------------------------
    def prompt_ids(self, history: Sequence[tuple[str, str]], respondent: str,
                   max_new_tokens: int, memories: Sequence = ()) -> list[int]:
        """The prompt for history + respondent's header; the oldest messages drop off to fit.
        The reply is promised at most half the window, so a max_tokens as long as the window
        (an API client's) cannot push the whole history out; generation stops at a full one."""
        clean = [(clean_name(speaker), strip_chat_tokens(text)) for speaker, text in history]
        reserve = min(max_new_tokens, self.max_length // 2)
        return self.encoder.prompt(group_turns(clean), clean_name(respondent), self.max_length,
                                   reserve=reserve, memories=memories)

    def prepare(self, history: Sequence[tuple[str, str]], respondent: str, max_new_tokens: int,
                memories: Sequence | None = None) -> tuple[list[int], tuple]:
        """Prompt ids and the memories they hold: `memories` when given (the bot finds its
        own), else what the engine's recall finds for this history (none without one)."""
        check_text(history, respondent)  # before recall and the tokenizer read it
        if memories is None:
            memories = self.find_memories(history, respondent)
        _, kept = self.encoder.memory_block(memories, self.max_length)
        return self.prompt_ids(history, respondent, max_new_tokens, kept), kept

    def find_memories(self, history: Sequence[tuple[str, str]], respondent: str,
                      **where) -> tuple:
        """The memories the respondent may read before replying to `history` (its scope)."""
        if self.recall is None:
            return ()
        return self.recall.find(history, respondent,
                                token_budget=self.max_length // MEMORY_SHARE, **where)

    def stream(self, history: Sequence[tuple[str, str]], respondent: str,
               params: SamplingParams | None = None) -> Iterator:
        raise NotImplementedError

    def reply(self, history: Sequence[tuple[str, str]], respondent: str,
              params: SamplingParams | None = None) -> list[str]:
        """The respondent's messages for one turn."""
        return messages_of(self.stream(history, respondent, params))


def check_text(history: Sequence[tuple[str, str]], respondent: str) -> None:
    """Refuse, in one line, text no tokenizer can read: a lone surrogate (half a UTF-16 pair,
    which JSON's \\ud800 and Python allow) has no UTF-8 bytes. The server answers it with 400."""
    for value in (respondent, *(part for turn in history for part in turn)):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            bad = value[error.start].encode("unicode_escape").decode()
            raise DoppelError(f"a message holds {bad}, half of a UTF-16 pair (a lone "
                              "surrogate), which is not text; send whole characters") from None


def messages_of(deltas) -> list[str]:
    """A turn's messages from its deltas (empty messages left out)."""
    messages: list[str] = []
    for delta in deltas:
        if delta.message_index == len(messages):
            messages.append("")
        if delta.text:
            messages[delta.message_index] += delta.text
    return [m for m in messages if m]


def _partner_counts(info: RunInfo) -> dict[str, dict[str, int]]:
    """speaker -> {other speaker: messages by them in conversations both took part in}.

    Read from the run's dataset folder when it is still there; empty otherwise.
    """
    path = (info.dataset or {}).get("path")
    if not path or not Path(path).is_dir():
        return {}
    from doppel.data.dataset import load_dataset

    counts: dict[str, dict[str, int]] = {}
    with contextlib.suppress(DoppelError):
        for conversation in load_dataset(Path(path)).conversations():
            per_speaker: dict[str, int] = {}
            for message in conversation.messages:
                per_speaker[message.speaker] = per_speaker.get(message.speaker, 0) + 1
            for speaker in per_speaker:
                mine = counts.setdefault(speaker, {})
                for other, n in per_speaker.items():
                    if other != speaker:
                        mine[other] = mine.get(other, 0) + n
    return counts
