"""Every format decision in one place: roles, message joins, loss masks, windows, prompts.

A conversation is a list of turns; a turn is a burst of messages by one speaker. Each turn becomes
one ChatML block with the speaker's name as the role, its messages joined by MESSAGE_SEP (as the
2023 reference did), so the model learns both when to send another message (the separator) and
when to hand the floor over (`<|im_end|>`):

    <|im_start|>Alex
    hey
    >>> what's up<|im_end|>
    <|im_start|>Sam
    ...

Training and inference both build token ids here, piece by piece (header, content, end), so a
training window and the generation prompt for the same history agree token for token.

Memories (stretches of earlier chats, doppel.memory) enter as ONE block before the conversation,
under the reserved role MEMORY_ROLE, one dated line per memory and one line per message:

    <|im_start|>(memories)
    [2024-03-02, chat "Sam"]
    Sam: the vet said Biscuit is fine
    Alex: phew<|im_end|>

It never carries loss, and takes at most a quarter of the window (MEMORY_SHARE).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
# THE message separator: a newline, a run of one mark, a space. Everything else about it (the
# pattern that splits generated text, the near misses of a small model, defusing it in data, the
# tail to hold back while streaming) is derived from this one constant.
MESSAGE_SEP = "\n>>> "
IGNORE_INDEX = -100  # label value that carries no loss (PyTorch's cross-entropy default)
# The role of the memories block: parenthesised, so no speaker name from the data is likely to
# collide with it (a person would be "Alex (2)", never "(memories)").
MEMORY_ROLE = "(memories)"
MEMORY_SHARE = 4  # the memories block takes at most max_length // MEMORY_SHARE tokens


class MemoryLike(Protocol):
    """What the format needs of a memory (doppel.memory.Memory has it): when, where, what."""

    start: float
    chat_name: str
    lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """A burst: consecutive messages by one speaker."""

    speaker: str
    messages: tuple[str, ...]


@dataclass(slots=True)
class Example:
    """One training window: token ids and labels (IGNORE_INDEX where no loss)."""

    input_ids: list[int]
    labels: list[int]
    memories: tuple = ()  # the memories its block holds (none for most windows)

    @property
    def trained_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


@dataclass(slots=True)
class EncodeStats:
    """What encoding did to the data, so nothing is cut silently."""

    conversations: int = 0
    windows: int = 0
    truncated_messages: int = 0
    skipped_without_trained_speaker: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def group_turns(messages: Iterable[tuple[str, str]]) -> list[ChatTurn]:
    """Group (speaker, text) messages into turns: consecutive messages by one speaker."""
    turns: list[ChatTurn] = []
    for speaker, text in messages:
        if turns and turns[-1].speaker == speaker:
            turns[-1] = ChatTurn(speaker, (*turns[-1].messages, text))
        else:
            turns.append(ChatTurn(speaker, (text,)))
    return turns


@dataclass(frozen=True)
class SeparatorRules:
    """What follows from a separator such as "\\n>>> " (mark ">", run of 3).

    The separator is two tokens ("\\n", ">>>"; the space joins the next word), and a small
    model writes the second without the first: at the very start of its reply (after the
    header's newline, where every later message of a burst starts) or glued to a word
    ("okbh>>> yeah"). Both are boundaries; a run after a space ("a >>> b", another token) is
    text, and so is a shorter run ("\\n>> quote", ":>")."""

    pattern: re.Pattern[str]  # the separator or a near miss ("\\n>>>>> ", "\\n>>>", ">>> " at
    # the start, "word>>> "): a boundary
    partial: re.Pattern[str]  # a tail that could still grow into a separator (while streaming)
    unfinished: re.Pattern[str]  # a finished block's tail that only a separator begins
    hint: str  # the shortest text a boundary contains (a fast "nothing to do" check)
    defused: str  # what a boundary in a message's own text becomes (after its newline, if any)


@lru_cache(maxsize=4)
def separator_rules(separator: str) -> SeparatorRules:
    body = separator.strip(" ")
    mark, run = body[1:2], len(body) - 1
    if not body.startswith("\n") or run < 2 or body[1:] != mark * run:
        raise ValueError(f"a separator is a newline, a run of one mark and a space: {separator!r}")
    escaped, word = re.escape(mark), rf"(?<=[^\s{re.escape(mark)}])"  # after a word's character
    return SeparatorRules(re.compile(rf"(?:\A|\n|{word}){escaped}{{{run},}} ?"),
                          re.compile(rf"(?:(?:\A|\n){escaped}*|{word}{escaped}{{1,{run - 1}}})\Z"),
                          re.compile(rf"(?:\A|\n){escaped}*\Z"), mark * run, f"{mark} ")


def _rules() -> SeparatorRules:
    return separator_rules(MESSAGE_SEP)


def split_messages(content: str) -> list[str]:
    """Turn a generated block's content back into separate messages. A tail that could only
    have grown into a separator ("lol\\n>>" as the block ended) is a message never begun."""
    rules = _rules()
    unfinished = rules.unfinished.search(content)
    content = content[:unfinished.start()] if unfinished else content
    return [part.strip() for part in rules.pattern.split(content) if part.strip()]


def partial_separator(text: str) -> int:
    """Length of the tail of streamed text that could still become a separator (0 if none)."""
    match = _rules().partial.search(text)
    return len(text) - match.start() if match else 0


_TOKEN_HINT = "<|"  # what both chat tokens start with


def strip_chat_tokens(text: str) -> str:
    """Text with the chat tokens removed: the tokenizer would read them as structure, so a typed
    "<|im_end|>" could end a turn or open one in someone else's name."""
    if _TOKEN_HINT not in text:
        return text
    return text.replace(IM_START, "").replace(IM_END, "")


def defuse(text: str) -> str:
    """A message from the data that cannot forge structure: no chat tokens, no separator (one
    in the text would teach the model a message boundary that never was)."""
    rules = _rules()
    if _TOKEN_HINT not in text and rules.hint not in text:  # nearly every message: nothing to do
        return text
    return rules.pattern.sub(lambda found: found[0][:found[0].startswith("\n")] + rules.defused,
                             strip_chat_tokens(text))


# what a text holds when defuse has anything to do: callers on a hot path (prepare, per message)
# test these inline and call defuse only then, as defuse itself does
DEFUSE_HINTS: tuple[str, str] = (_TOKEN_HINT, _rules().hint)


def clean_name(name: str) -> str:
    """A speaker name fit for a ChatML header: one line, no chat tokens."""
    return " ".join(strip_chat_tokens(name).split()) or "?"


def memory_text(memories: Sequence[MemoryLike]) -> str:
    """The content of the memories block: per memory a `[date, chat "name"]` line, then one
    `Speaker: text` line per message, flattened to one line so no text forges structure."""
    lines: list[str] = []
    for memory in memories:
        day = time.strftime("%Y-%m-%d", time.gmtime(memory.start))
        lines.append(f'[{day}, chat "{_one_line(memory.chat_name)}"]')
        lines += [f"{clean_name(speaker)}: {_one_line(text)}" for speaker, text in memory.lines]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(strip_chat_tokens(text).split())


def prompt_text(history: Sequence[ChatTurn], respondent: str,
                memories: Sequence[MemoryLike] = ()) -> str:
    """The text of a generation prompt: the memories block (if any), the history, then the
    respondent's open header.

    The text twin of ChatEncoder.prompt (without its optional BOS prefix and context trimming):
    exported chat templates (Jinja, Ollama's Go template) must render exactly this.
    """
    recalled = f"{IM_START}{MEMORY_ROLE}\n{memory_text(memories)}{IM_END}\n" if memories else ""
    blocks = "".join(f"{IM_START}{t.speaker}\n{MESSAGE_SEP.join(t.messages)}{IM_END}\n"
                     for t in history)
    return f"{recalled}{blocks}{IM_START}{respondent}\n"


def ensure_chat_tokens(tokenizer) -> list[str]:
    """Add the two ChatML tokens when the tokenizer lacks them; return the ones added."""
    vocab = tokenizer.get_vocab()
    missing = [token for token in (IM_START, IM_END) if token not in vocab]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    for token in (IM_START, IM_END):
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{token} is not a single token for this tokenizer: {ids}")
    tokenizer.pad_token = tokenizer.pad_token or IM_END
    return missing


class ChatEncoder:
    """Turns conversations into training windows and histories into generation prompts."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.im_start_id = tokenizer.convert_tokens_to_ids(IM_START)
        self.im_end_id = tokenizer.convert_tokens_to_ids(IM_END)
        self.newline_ids = self._ids("\n")
        bos = tokenizer.bos_token_id
        self.prefix = (
            [bos] if bos is not None and bos not in (self.im_start_id, self.im_end_id) else []
        )
        self._header_cache: dict[str, list[int]] = {}

    def _ids(self, text: str) -> list[int]:
        """Plain text to ids; a typed "<|im_end|>" stays text and can never end a turn."""
        if not text:
            return []
        return self.tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)

    def header(self, speaker: str) -> list[int]:
        """`<|im_start|>Name\\n`: never carries loss."""
        if speaker not in self._header_cache:
            self._header_cache[speaker] = [self.im_start_id, *self._ids(f"{speaker}\n")]
        return self._header_cache[speaker]

    def block(self, turn: ChatTurn, trained: bool) -> tuple[list[int], list[int]]:
        """One turn's ids and labels: content and `<|im_end|>` carry loss when trained."""
        head = self.header(turn.speaker)
        body = [*self._ids(MESSAGE_SEP.join(turn.messages)), self.im_end_id]
        ids = head + body + self.newline_ids
        labels = [IGNORE_INDEX] * len(head) + (body if trained else [IGNORE_INDEX] * len(body))
        return ids, labels + [IGNORE_INDEX] * len(self.newline_ids)

    def memory_block(self, memories: Sequence[MemoryLike],
                     max_length: int) -> tuple[list[int], tuple]:
        """The memories block's ids (no loss anywhere) and the memories it kept: the least
        relevant (last) ones drop until it fits max_length // MEMORY_SHARE; none: no block."""
        kept = tuple(memories)
        room = max_length // MEMORY_SHARE
        while kept:
            body = self._ids(memory_text(kept))
            ids = [*self.header(MEMORY_ROLE), *body, self.im_end_id, *self.newline_ids]
            if len(ids) <= room:
                return ids, kept
            kept = kept[:-1]
        return [], ()

    def encode(
        self,
        turns: Sequence[ChatTurn],
        trained_speakers: set[str] | None,
        max_length: int,
        stats: EncodeStats | None = None,
        memories: Callable[[int, Sequence[ChatTurn]], Sequence[MemoryLike]] | None = None,
    ) -> list[Example]:
        """Overlapping windows of whole turns that fit max_length; None trains every speaker.

        A window holds as many turns as fit; the next window starts halfway through the previous
        one, so every trained turn appears in a window with context. A turn too long for a window
        on its own keeps its first tokens and is counted in stats.truncated_messages.
        `memories(start, turns)`, when given, returns the memories for the window starting at
        turn `start` (usually none): their block opens the window and counts against its length.
        """
        stats = stats if stats is not None else EncodeStats()
        stats.conversations += 1
        if trained_speakers is not None and not any(t.speaker in trained_speakers for t in turns):
            stats.skipped_without_trained_speaker += 1
            return []
        blocks = [self._fitted_block(t, trained_speakers, max_length, stats) for t in turns]
        examples: list[Example] = []
        start = 0
        while start < len(blocks):
            recalled, used = self.memory_block(memories(start, turns) if memories else (),
                                               max_length)
            end = self._fill(blocks, start, len(self.prefix) + len(recalled), max_length)
            if end == start:  # a turn that needs the whole window: no room for memories
                recalled, used = [], ()
                end = self._fill(blocks, start, len(self.prefix), max_length)
            window = blocks[start:end]
            ids = self.prefix + recalled + [i for block_ids, _ in window for i in block_ids]
            labels = [IGNORE_INDEX] * (len(self.prefix) + len(recalled)) + [
                x for _, lab in window for x in lab]
            example = Example(ids, labels, used)
            if example.trained_tokens:
                examples.append(example)
                stats.tokens += len(ids)
                stats.trained_tokens += example.trained_tokens
                if used:
                    stats.extra["windows_with_memories"] = (
                        stats.extra.get("windows_with_memories", 0) + 1)
            if end >= len(blocks):
                break
            start = max(start + 1, (start + end) // 2)
        stats.windows += len(examples)
        return examples

    @staticmethod
    def _fill(blocks, start: int, length: int, max_length: int) -> int:
        """How far from `start` whole turns fit after `length` tokens already used."""
        end = start
        while end < len(blocks) and length + len(blocks[end][0]) <= max_length:
            length += len(blocks[end][0])
            end += 1
        return end

    def _fitted_block(
        self, turn, trained_speakers, max_length, stats
    ) -> tuple[list[int], list[int]]:
        trained = trained_speakers is None or turn.speaker in trained_speakers
        ids, labels = self.block(turn, trained)
        room = max_length - len(self.prefix)
        if len(ids) <= room:
            return ids, labels
        stats.truncated_messages += 1
        tail = [self.im_end_id, *self.newline_ids]
        tail_labels = [self.im_end_id if trained else IGNORE_INDEX] + [IGNORE_INDEX] * len(
            self.newline_ids
        )
        keep = room - len(tail)
        return ids[:keep] + tail, labels[:keep] + tail_labels

    def prompt(
        self, history: Sequence[ChatTurn], respondent: str, max_length: int, reserve: int = 0,
        memories: Sequence[MemoryLike] = (),
    ) -> list[int]:
        """Ids for the memories block (if any), the history and the respondent's header, ready
        to generate from. The oldest turns are dropped until the prompt and `reserve` new tokens
        fit max_length; the memories block is cut as in training windows."""
        head = self.header(respondent)
        recalled, _ = self.memory_block(memories, max_length)
        blocks = [self.block(turn, trained=False)[0] for turn in history]
        budget = max_length - reserve - len(self.prefix) - len(head) - len(recalled)
        kept: list[list[int]] = []
        for ids in reversed(blocks):
            if len(ids) > budget:
                break
            kept.append(ids)
            budget -= len(ids)
        return self.prefix + recalled + [i for ids in reversed(kept) for i in ids] + head
