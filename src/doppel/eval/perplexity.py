"""Per-speaker perplexity on held-out conversations, from exactly the training loss mask.

Each speaker's tokens are the ones `ChatEncoder.encode(turns, {speaker}, max_length)` puts loss on
(message tokens and end tokens), so held-out perplexity measures what training optimised. Windows
that overlap score each token once (in the earlier window, where it has more context), and a
window shared by several speakers is run through the model once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from doppel.chatformat import IGNORE_INDEX, ChatEncoder, ChatTurn, Example


@dataclass
class Scored:
    """Summed negative log-likelihood and token count for one speaker."""

    nll: float = 0.0
    tokens: int = 0

    @property
    def perplexity(self) -> float | None:
        return math.exp(self.nll / self.tokens) if self.tokens else None


@dataclass
class ScoringWindows:
    """Unique windows to run, and for each speaker the (window, labels) pairs that score it."""

    windows: list[list[int]] = field(default_factory=list)
    index: dict[tuple[int, ...], int] = field(default_factory=dict)
    labels: dict[str, list[tuple[int, list[int]]]] = field(default_factory=dict)

    def add(self, speaker: str, example: Example) -> None:
        key = tuple(example.input_ids)
        if key not in self.index:
            self.index[key] = len(self.windows)
            self.windows.append(example.input_ids)
        self.labels.setdefault(speaker, []).append((self.index[key], example.labels))


def drop_overlap(examples: list[Example], prefix: int, boundary: int) -> list[Example]:
    """Mask, in each window, the labels of leading turns the previous window already scored."""
    kept = examples[:1]
    for before, example in itertools.pairwise(examples):
        ids = example.input_ids
        labels = list(example.labels)
        starts = [j for j in range(len(ids) - 1, prefix, -1) if ids[j] == boundary]
        for j in starts:  # longest first: blocks [prefix, j) equal the previous window's end
            size = j - prefix
            if size <= len(before.input_ids) - prefix and before.input_ids[-size:] == ids[prefix:j]:
                labels[prefix:j] = [IGNORE_INDEX] * size
                break
        kept.append(Example(ids, labels))
    return kept


def plan_windows(
    encoder: ChatEncoder, conversations: Sequence[Sequence[ChatTurn]], speakers: Sequence[str],
    max_length: int,
) -> ScoringWindows:
    plan = ScoringWindows(labels={s: [] for s in speakers})
    for turns in conversations:
        present = {t.speaker for t in turns}
        for speaker in speakers:
            if speaker not in present:
                continue
            examples = encoder.encode(turns, {speaker}, max_length)
            for example in drop_overlap(examples, len(encoder.prefix), encoder.im_start_id):
                plan.add(speaker, example)
    return plan


def _batches(windows: list[list[int]], batch_tokens: int) -> list[list[int]]:
    """Indices of windows grouped by similar length, each group within the token budget."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
    groups: list[list[int]] = []
    for i in order:
        if groups and (len(groups[-1]) + 1) * len(windows[i]) <= batch_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def token_losses(model, windows: list[list[int]], pad_id: int, batch_tokens: int,
                 advance: Callable[[int], None] | None = None) -> list[list[float]]:
    """For each window, the loss of predicting token t from tokens before it (0.0 at t=0)."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    losses: list[list[float]] = [[] for _ in windows]
    with torch.inference_mode():
        for group in _batches(windows, batch_tokens):
            width = max(len(windows[i]) for i in group)
            ids = torch.full((len(group), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for row, i in enumerate(group):
                ids[row, : len(windows[i])] = torch.tensor(windows[i])
                mask[row, : len(windows[i])] = 1
            ids, mask = ids.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none").cpu()
            for row, i in enumerate(group):
                losses[i] = [0.0, *nll[row, : len(windows[i]) - 1].tolist()]
            if advance:
                advance(len(group))
    return losses


def score(model, plan: ScoringWindows, pad_id: int, batch_tokens: int = 2048,
          advance: Callable[[int], None] | None = None) -> dict[str, Scored]:
    """Run a plan's windows through the model; Scored per speaker (0 tokens: nothing held out)."""
    losses = token_losses(model, plan.windows, pad_id, batch_tokens, advance)
    scored = {s: Scored() for s in plan.labels}
    for speaker, pairs in plan.labels.items():
        for window, labels in pairs:
            for loss, label in zip(losses[window], labels, strict=True):
                if label != IGNORE_INDEX:
                    scored[speaker].nll += loss
                    scored[speaker].tokens += 1
    return scored


def pad_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return ChatEncoder(tokenizer).im_end_id


def speaker_perplexity(
    model, tokenizer, conversations: Sequence[Sequence[ChatTurn]], speakers: Sequence[str],
    max_length: int, batch_tokens: int = 2048,
) -> dict[str, Scored]:
    """Scored (nll, tokens) per speaker over the conversations."""
    plan = plan_windows(ChatEncoder(tokenizer), conversations, speakers, max_length)
    return score(model, plan, pad_id(tokenizer), batch_tokens)


def overall(scored: dict[str, Scored]) -> Scored:
    """All speakers' tokens pooled: the token-weighted perplexity."""
    return Scored(sum(s.nll for s in scored.values()), sum(s.tokens for s in scored.values()))
