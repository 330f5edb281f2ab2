"""Dataset folder -> tokenised training and validation windows, and the collator that batches them.

All formatting goes through chatformat; this module only decides whose messages are trained and
how windows are batched (length-grouped padding, or padding-free packing).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from doppel.chatformat import (
    IGNORE_INDEX,
    MEMORY_SHARE,
    ChatEncoder,
    ChatTurn,
    EncodeStats,
    Example,
    group_turns,
)
from doppel.data.dataset import Conversation, Dataset
from doppel.errors import DoppelError

QUERY_TURNS = 8  # a window's memories are searched with what the others say in its first turns


def trained_speakers(train_on: str, dataset: Dataset) -> set[str] | None:
    """Names whose messages carry loss: `me`, `all` (None: everyone) or a comma list of names."""
    names = set(dataset.speakers.values())
    if train_on == "all":
        return None
    if train_on == "me":
        return {dataset.me_name}
    wanted = {part.strip() for part in train_on.split(",") if part.strip()}
    wanted = {dataset.me_name if name == "me" else name for name in wanted}
    unknown = sorted(wanted - names)
    if unknown:
        raise DoppelError(
            f"--train-on names {', '.join(unknown)} not found in the dataset; speakers: "
            f"{', '.join(sorted(names))}"
        )
    return wanted


@dataclass
class Windows:
    examples: list[Example]
    stats: EncodeStats


class WindowMemories:
    """Which training windows open with memories, and which: a seeded `share` of them, each
    from strictly earlier conversations (ended before this one began, never this one) in the
    conversation's scope (chats every member of its chat but the user was part of, by person
    id: memory.scope.ChatPartners). A window's memories are searched with what its partners say
    in its first turns: what a reply at inference has to search with (the friend's words),
    never the user's replies it trains."""

    def __init__(self, index, share: float, dataset: Dataset, max_length: int,
                 seed: int = 0) -> None:
        from doppel.memory.scope import ChatPartners

        self.index, self.share, self.seed = index, share, seed
        self.me, self.me_id = dataset.me_name, dataset.me_id
        self.partners = ChatPartners.of(dataset)
        self.token_budget = max_length // MEMORY_SHARE

    def for_conversation(
        self, conversation: Conversation
    ) -> Callable[[int, Sequence[ChatTurn]], tuple]:
        from doppel.infer.recall import scoped_search

        partners = self.partners.in_chat(conversation.chat_id, self.me_id)
        began = min((m.time for m in conversation.messages), default=0.0)

        def pick(start: int, turns: Sequence[ChatTurn]) -> tuple:
            chosen = random.Random(f"{self.seed}:{conversation.id}:{start}").random()
            if chosen >= self.share or not partners:
                return ()
            query = "\n".join(text for turn in turns[start:start + QUERY_TURNS]
                              if turn.speaker != self.me for text in turn.messages)
            return scoped_search(self.index, query, partners, before=began,
                                 exclude=(conversation.id,), token_budget=self.token_budget)

        return pick


def build_windows(
    dataset: Dataset, encoder: ChatEncoder, trained: set[str] | None, max_length: int, split: str,
    memories: WindowMemories | None = None,
) -> Windows:
    """Every conversation of a split as overlapping windows that fit max_length (a share of
    them opening with memories, when `memories` says)."""
    stats = EncodeStats()
    examples: list[Example] = []
    for conversation in dataset.conversations(split):
        turns = group_turns((m.speaker, m.text) for m in conversation.messages)
        picker = memories.for_conversation(conversation) if memories else None
        examples.extend(encoder.encode(turns, trained, max_length, stats, memories=picker))
    return Windows(examples, stats)


def window_memories(dataset: Dataset, share: float, max_length: int,
                    seed: int = 0) -> WindowMemories | None:
    """The recipe's memory_share made real: the dataset's index (built now if it is missing,
    saying so), or None when the share is 0."""
    if share <= 0:
        return None
    from doppel.memory import open_index

    return WindowMemories(open_index(dataset.path, build_if_missing=True), share, dataset,
                          max_length, seed)


class WindowDataset:
    """A map-style dataset of windows, in the dict form the HF Trainer and collators expect."""

    def __init__(self, examples: list[Example]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        example = self.examples[index]
        return {"input_ids": example.input_ids, "labels": example.labels}


class PaddingCollator:
    """Pads a batch to its longest window (right side); labels padded with IGNORE_INDEX."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, list[int]]]):
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        ids, labels, mask = [], [], []
        for feature in features:
            pad = longest - len(feature["input_ids"])
            ids.append(feature["input_ids"] + [self.pad_token_id] * pad)
            labels.append(feature["labels"] + [IGNORE_INDEX] * pad)
            mask.append([1] * len(feature["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }


def make_collator(batching: str, pad_token_id: int):
    """Packed batches are one padding-free row whose position ids restart per window, so with
    no attention mask transformers builds a block-diagonal mask: windows never see each other."""
    if batching == "packed":
        from transformers import DataCollatorWithFlattening

        return DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)
    return PaddingCollator(pad_token_id)


class LengthBucketSampler:
    """Windows of similar length batched together, batch order shuffled each epoch.

    transformers' LengthGroupedSampler sorts within a few random mega-batches only, which on a
    small chat dataset leaves ~7% padding; sorting the whole epoch keeps padding near 1-2% while
    the batch order (and ties) stay random. Deterministic for a seed and epoch, so resume works.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import torch

        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        shuffled = torch.randperm(len(self.lengths), generator=generator).tolist()
        ordered = sorted(shuffled, key=self.lengths.__getitem__)  # stable: ties stay shuffled
        rest = len(ordered) % self.batch_size  # the shortest windows form the one partial batch,
        full = ordered[rest:]  # which goes last so the DataLoader's cuts align
        batches = [full[i : i + self.batch_size] for i in range(0, len(full), self.batch_size)]
        for index in torch.randperm(len(batches), generator=generator).tolist():
            yield from batches[index]
        yield from ordered[:rest]
