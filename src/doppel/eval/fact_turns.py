"""The fact test's turns: held-out turns naming a fact word (a name, a place, a pet, a number,
a word that belongs to one chat: memory/fact_words.py's rule, the bench's too) that the
speaker's earlier chats in scope already hold, so a memory could have told the model.

"Earlier in scope" means a conversation that ended before the held-out one began, in a chat
every partner of the turn was part of (the memory scope rule), never the conversation itself;
words are compared by stem. Which turns are drawn, and in what order, follows the seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from doppel.chatformat import MESSAGE_SEP, group_turns
from doppel.data.dataset import Dataset
from doppel.eval.contexts import Context
from doppel.memory.fact_words import WORD, FactWord, WordCounts, stem


@dataclass(frozen=True)
class FactTurn:
    """One held-out turn, the context before it, and where its fact word sits in its text."""

    context: Context
    before: float  # its conversation's start: memory holds only what ended before
    word: str  # casefolded
    start: int  # the word's characters in MESSAGE_SEP.join(context.reply)
    end: int
    kind: str = ""  # the rule's kind of fact (fact_words.KINDS)


Places = dict[str, list[tuple[float, str, str]]]


def fact_places(dataset: Dataset, wanted: set[str]) -> tuple[dict[str, FactWord], Places]:
    """The fact words among the stems `wanted`, and each one's (end time, chat id, conversation
    id) of the conversations holding it (only the held-out turns' words are counted: a large
    export has millions)."""
    counts, places = WordCounts.of(dataset), {}
    for conversation in dataset.conversations():
        held = counts.add(conversation.chat_id,
                          ((m.speaker_id, m.text) for m in conversation.messages), wanted)
        end = max(m.time for m in conversation.messages)
        for key in held:
            places.setdefault(key, []).append((end, conversation.chat_id, conversation.id))
    facts = counts.pick()
    return facts, {key: p for key, p in places.items() if key in facts}


def fact_turns(dataset: Dataset, speakers: Sequence[str], history_turns: int, limit: int,
               seed: int) -> list[FactTurn]:
    """Up to `limit` held-out turns of `speakers` (after someone else's turn) naming a fact word
    an earlier in-scope conversation holds; one word per turn (its first such), seeded order."""
    from doppel.memory.scope import ChatPartners

    if limit <= 0:
        return []
    wanted = set(speakers)
    held_out = {stem(w) for c in dataset.conversations("val") for m in c.messages
                if m.speaker in wanted for w in WORD.findall(m.text)}
    facts, places = fact_places(dataset, held_out)
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
            for match in WORD.finditer(text):
                key = stem(match.group())
                if any(end < began and cid != conversation.id and others
                       and others <= set(scopes.members.get(chat, ()))
                       for end, chat, cid in places.get(key, ())):
                    context = Context(conversation.id, history, turn.speaker, turn.messages)
                    found.append(FactTurn(context, began, match.group().casefold(),
                                          match.start(), match.end(), facts[key].kind))
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
