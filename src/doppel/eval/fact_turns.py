"""The fact test's turns: held-out turns naming a rare word (a name, a place, a date, a pet)
that the speaker's earlier chats in scope already hold, so a memory could have told the model.

A word is rare when few conversations hold it (RARE_CONVERSATIONS, the prototype's cut in
issue 20); "earlier in scope" means a conversation that ended before the held-out one began, in
a chat every partner of the turn was part of (the memory scope rule), never the conversation
itself. Which turns are drawn, and in what order, follows the seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from doppel.chatformat import MESSAGE_SEP, group_turns
from doppel.data.dataset import Dataset
from doppel.eval.contexts import Context

RARE_CONVERSATIONS = 20  # a word held by more conversations than this is no fact
MIN_CHARS = 4  # shorter words are too often small talk ("lol"); numbers count from 2 digits
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class FactTurn:
    """One held-out turn, the context before it, and where its fact word sits in its text."""

    context: Context
    before: float  # its conversation's start: memory holds only what ended before
    word: str  # casefolded
    start: int  # the word's characters in MESSAGE_SEP.join(context.reply)
    end: int


def _fact_word(word: str) -> bool:
    return len(word) >= MIN_CHARS or (word.isdigit() and len(word) >= 2)


def _word_places(dataset: Dataset, wanted: set[str]) -> dict[str, list[tuple[float, str, str]]]:
    """Each rare word of `wanted` -> (end time, chat id, conversation id) of the conversations
    holding it (only the held-out turns' words are counted: a large export has millions)."""
    places: dict[str, list[tuple[float, str, str]]] = {}
    for conversation in dataset.conversations():
        words = {w.casefold() for m in conversation.messages for w in _WORD.findall(m.text)}
        end = max(m.time for m in conversation.messages)
        for word in words & wanted:
            places.setdefault(word, []).append((end, conversation.chat_id, conversation.id))
    return {w: p for w, p in places.items() if len(p) <= RARE_CONVERSATIONS}


def fact_turns(dataset: Dataset, speakers: Sequence[str], history_turns: int, limit: int,
               seed: int) -> list[FactTurn]:
    """Up to `limit` held-out turns of `speakers` (after someone else's turn) naming a rare word
    an earlier in-scope conversation holds; one word per turn (its first such), seeded order."""
    from doppel.memory.scope import ChatPartners

    if limit <= 0:
        return []
    wanted = set(speakers)
    held_out = {w.casefold() for c in dataset.conversations("val") for m in c.messages
                if m.speaker in wanted for w in _WORD.findall(m.text)}
    places = _word_places(dataset, {w for w in held_out if _fact_word(w)})
    scopes = ChatPartners.of(dataset)
    found: list[FactTurn] = []
    for conversation in dataset.conversations("val"):
        began = min(m.time for m in conversation.messages)
        turns = group_turns((m.speaker, m.text) for m in conversation.messages)
        for index in range(1, len(turns)):
            turn = turns[index]
            if turn.speaker not in wanted:
                continue
            before = turns[max(0, index - history_turns):index]
            history = tuple((t.speaker, text) for t in before for text in t.messages)
            others = scopes.in_chat(conversation.chat_id, scopes.ids.get(turn.speaker, ""))
            text = MESSAGE_SEP.join(turn.messages)
            for match in _WORD.finditer(text):
                word = match.group().casefold()
                if any(end < began and cid != conversation.id and others
                       and others <= set(scopes.members.get(chat, ()))
                       for end, chat, cid in places.get(word, ())):
                    context = Context(conversation.id, history, turn.speaker, turn.messages)
                    found.append(FactTurn(context, began, word, match.start(), match.end()))
                    break
    random.Random(f"facts:{seed}").shuffle(found)
    return found[:limit]


def span_ids(tokenizer, text: str, start: int, end: int) -> tuple[list[int], list[int]]:
    """The reply's ids (its text and the end token, as ChatEncoder.block scores them) and the
    positions of the tokens that overlap characters [start, end)."""
    from doppel.chatformat import ChatEncoder

    encoded = tokenizer(text, add_special_tokens=False, split_special_tokens=True,
                        return_offsets_mapping=True)
    span = [t for t, (a, b) in enumerate(encoded["offset_mapping"]) if a < end and b > start]
    return [*encoded["input_ids"], ChatEncoder(tokenizer).im_end_id], span
