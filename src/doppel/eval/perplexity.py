"""Per-speaker perplexity on held-out conversations, from exactly the training loss mask.

Each speaker's tokens are the ones `ChatEncoder.encode(turns, {speaker}, max_length)` puts loss on
(message tokens and end tokens), so held-out perplexity measures what training optimised. Windows
that overlap score each token once (in the earlier window, where it has more context), and a
window shared by several speakers is run through the model once.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from doppel.chatformat import IGNORE_INDEX, ChatEncoder, ChatTurn, Example
from doppel.eval.bootstrap import Intervals, paired


@dataclass
class Scored:
    """Summed negative log-likelihood and token count for one speaker."""

    nll: float = 0.0
    tokens: int = 0
    # conversation index -> [nll, tokens] there: the units bootstrap intervals resample
    by_unit: dict[int, list[float]] = field(default_factory=dict)

    def add(self, unit: int, nll: float) -> None:
        self.nll += nll
        self.tokens += 1
        found = self.by_unit.setdefault(unit, [0.0, 0])
        found[0] += nll
        found[1] += 1

    @property
    def perplexity(self) -> float | None:
        return math.exp(self.nll / self.tokens) if self.tokens else None


@dataclass
class ScoringWindows:
    """Unique windows to run, and for each speaker the (window, labels) pairs that score it."""

    windows: list[list[int]] = field(default_factory=list)
    index: dict[tuple[int, ...], int] = field(default_factory=dict)
    labels: dict[str, list[tuple[int, list[int]]]] = field(default_factory=dict)
    units: dict[str, list[int]] = field(default_factory=dict)  # conversation of each labels pair

    def add(self, speaker: str, example: Example, unit: int = 0) -> None:
        key = tuple(example.input_ids)
        if key not in self.index:
            self.index[key] = len(self.windows)
            self.windows.append(example.input_ids)
        self.labels.setdefault(speaker, []).append((self.index[key], example.labels))
        self.units.setdefault(speaker, []).append(unit)


def drop_overlap(examples: list[Example], prefix: int, boundary: int,
                 prefixes: Sequence[int] | None = None) -> list[Example]:
    """Mask, in each window, the labels of leading turns the previous window already scored.

    `prefixes`: each window's own unscored opening (a memories block makes it differ)."""
    heads = list(prefixes) if prefixes is not None else [prefix] * len(examples)
    kept = examples[:1]
    for n, (before, example) in enumerate(itertools.pairwise(examples)):
        ids = example.input_ids
        labels = list(example.labels)
        prefix, room = heads[n + 1], len(before.input_ids) - heads[n]
        starts = [j for j in range(len(ids) - 1, prefix, -1) if ids[j] == boundary]
        for j in starts:  # longest first: blocks [prefix, j) equal the previous window's end
            size = j - prefix
            if size <= room and before.input_ids[-size:] == ids[prefix:j]:
                labels[prefix:j] = [IGNORE_INDEX] * size
                break
        kept.append(Example(ids, labels))
    return kept


def plan_windows(
    encoder: ChatEncoder, conversations: Sequence[Sequence[ChatTurn]], speakers: Sequence[str],
    max_length: int, max_tokens: int = 0, seed: int = 0,
) -> ScoringWindows:
    """The windows that score each speaker's held-out tokens.

    With `max_tokens`, conversations are taken in a seeded random order and a speaker stops
    being scored once it has that many tokens (the conversation that crosses the cap is kept
    whole): a sample of conversations whose cost shows in the bootstrap interval, which resamples
    the same conversations. 0 scores every held-out token."""
    plan = ScoringWindows(labels={s: [] for s in speakers})
    order = list(range(len(conversations)))
    if max_tokens:
        random.Random(f"perplexity:{seed}").shuffle(order)
    counted = dict.fromkeys(speakers, 0)
    for unit in order:
        present = {t.speaker for t in conversations[unit]}
        for speaker in speakers:
            if speaker not in present or (max_tokens and counted[speaker] >= max_tokens):
                continue
            examples = encoder.encode(conversations[unit], {speaker}, max_length)
            for example in drop_overlap(examples, len(encoder.prefix), encoder.im_start_id):
                plan.add(speaker, example, unit)
                counted[speaker] += sum(label != IGNORE_INDEX for label in example.labels)
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


def scored_positions(plan: ScoringWindows) -> list[list[bool]]:
    """For each window, the positions some speaker's labels score (the only logits needed)."""
    marks = [[False] * len(window) for window in plan.windows]
    for pairs in plan.labels.values():
        for window, labels in pairs:
            for t, label in enumerate(labels):
                if label != IGNORE_INDEX:
                    marks[window][t] = True
    return marks


def _padded(windows: list[list[int]], group: list[int], pad_id: int):
    import torch

    width = max(len(windows[i]) for i in group)
    ids = torch.full((len(group), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(group), width), dtype=torch.long)
    for row, i in enumerate(group):
        ids[row, : len(windows[i])] = torch.tensor(windows[i])
        mask[row, : len(windows[i])] = 1
    return ids, mask


def _all_losses(model, ids, mask, lengths: list[int]) -> list[list[float]]:
    """The full path: logits at every position (what eval did before scored_positions)."""
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none").cpu()
    return [[0.0, *nll[row, : n - 1].tolist()] for row, n in enumerate(lengths)]


def _scored_losses(model, ids, mask, lengths: list[int], marks: list[list[bool]]):
    """Logits only where a token is scored (train/loss.py's hook); 0.0 at the other positions."""
    import torch
    import torch.nn.functional as F

    from doppel.train.loss import logits_where_labelled

    labels = torch.full_like(ids, IGNORE_INDEX)
    for row, marked in enumerate(marks):
        where = torch.tensor(marked, dtype=torch.bool)
        labels[row, : len(marked)][where] = ids[row, : len(marked)][where].cpu()
    labels = labels.to(ids.device)
    with logits_where_labelled(model, labels):
        logits = model(input_ids=ids, attention_mask=mask).logits.float().squeeze(0)
    targets = labels[:, 1:][labels[:, 1:] != IGNORE_INDEX]
    nll = F.cross_entropy(logits, targets, reduction="none").cpu().tolist()
    losses = [[0.0] * n for n in lengths]
    rows, positions = (labels[:, 1:] != IGNORE_INDEX).nonzero(as_tuple=True)
    for loss, row, t in zip(nll, rows.tolist(), positions.tolist(), strict=True):
        losses[row][t + 1] = loss
    return losses


def token_losses(model, windows: list[list[int]], pad_id: int, batch_tokens: int,
                 advance: Callable[[int], None] | None = None,
                 scored: list[list[bool]] | None = None) -> list[list[float]]:
    """For each window, the loss of predicting token t from tokens before it (0.0 at t=0).

    With `scored` (scored_positions), only those positions' logits are computed (the output
    layer is a causal LM's widest and most positions score nothing); the rest read 0.0.
    """
    import torch

    device = next(model.parameters()).device
    losses: list[list[float]] = [[] for _ in windows]
    with torch.inference_mode():
        for group in _batches(windows, batch_tokens):
            ids, mask = _padded(windows, group, pad_id)
            ids, mask = ids.to(device), mask.to(device)
            lengths = [len(windows[i]) for i in group]
            if scored is None:
                found = _all_losses(model, ids, mask, lengths)
            else:
                found = _scored_losses(model, ids, mask, lengths, [scored[i] for i in group])
            for i, window_losses in zip(group, found, strict=True):
                losses[i] = window_losses
            if advance:
                advance(len(group))
    return losses


def score(model, plan: ScoringWindows, pad_id: int, batch_tokens: int = 2048,
          advance: Callable[[int], None] | None = None, fast: bool = True) -> dict[str, Scored]:
    """Run a plan's windows through the model; Scored per speaker (0 tokens: nothing held out).

    `fast=False` computes logits at every position (the old path, kept for bench/ and tests)."""
    if fast:
        # a causal model's logits up to the last scored token ignore what follows it: cut there
        marks = scored_positions(plan)
        ends = [max((t + 1 for t, marked in enumerate(m) if marked), default=1) for m in marks]
        windows = [window[:end] for window, end in zip(plan.windows, ends, strict=True)]
        losses = token_losses(model, windows, pad_id, batch_tokens, advance,
                              [m[:end] for m, end in zip(marks, ends, strict=True)])
        losses = [found + [0.0] * (len(window) - len(found))
                  for found, window in zip(losses, plan.windows, strict=True)]
    else:
        losses = token_losses(model, plan.windows, pad_id, batch_tokens, advance)
    scored = {s: Scored() for s in plan.labels}
    for speaker, pairs in plan.labels.items():
        for (window, labels), unit in zip(pairs, plan.units.get(speaker, []), strict=True):
            for loss, label in zip(losses[window], labels, strict=True):
                if label != IGNORE_INDEX:
                    scored[speaker].add(unit, loss)
    return scored


def pad_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return ChatEncoder(tokenizer).im_end_id


def speaker_perplexity(
    model, tokenizer, conversations: Sequence[Sequence[ChatTurn]], speakers: Sequence[str],
    max_length: int, batch_tokens: int = 2048, fast: bool = True,
) -> dict[str, Scored]:
    """Scored (nll, tokens) per speaker over the conversations."""
    plan = plan_windows(ChatEncoder(tokenizer), conversations, speakers, max_length)
    return score(model, plan, pad_id(tokenizer), batch_tokens, fast=fast)


def overall(scored: dict[str, Scored]) -> Scored:
    """All speakers' tokens pooled: the token-weighted perplexity."""
    pooled = Scored(sum(s.nll for s in scored.values()), sum(s.tokens for s in scored.values()))
    for found in scored.values():
        for unit, (nll, tokens) in found.by_unit.items():
            into = pooled.by_unit.setdefault(unit, [0.0, 0])
            into[0] += nll
            into[1] += tokens
    return pooled


def intervals(tuned: Scored, base: Scored, seed: int) -> Intervals | None:
    """Bootstrap intervals over held-out conversations, paired (both models scored the same)."""
    units = sorted(set(tuned.by_unit) & set(base.by_unit))

    def statistic(found: Scored):
        parts = [found.by_unit[u] for u in units]

        def perplexity_of(drawn):
            tokens = sum(parts[i][1] for i in drawn)
            return math.exp(sum(parts[i][0] for i in drawn) / tokens) if tokens else None

        return perplexity_of

    return paired(statistic(tuned), statistic(base), len(units), seed)
