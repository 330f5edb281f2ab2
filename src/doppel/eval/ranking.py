"""A ranking test of sense and persona: does the model pick the true next turn among distractors?

Persona-chat benchmarks measure context fit this way, without a classifier: for each held-out
context, the evaluated speaker's real reply is one of N candidates; the others are real turns by
the same speaker from other conversations (right voice, wrong context) and turns by other speakers
(right kind of text, wrong voice). The model ranks candidates by their log-likelihood per token
after the context in the chat format (per token, so short and long candidates compare). hits@1 is
the share ranked first, MRR the mean of 1/rank; chance is 1/N for both hits@1 and about
(1 + 1/2 + ... + 1/N)/N for MRR. Distractors are drawn with the seed, so a rerun ranks the same.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from doppel.chatformat import ChatEncoder, ChatTurn
from doppel.eval.contexts import Context

if TYPE_CHECKING:
    from doppel.eval.results import RankingRow
    from doppel.infer.batcher import Prefilled

MIN_ITEMS = 5  # fewer rankable contexts for a speaker: the report says so instead of a number
# Each candidate is scored on its first tokens: a chat reply is shorter (a 47-character line is ~12
# tokens), and a long distractor costs its length ten times over (once per item it is drawn for),
# which made ranking eval's largest part on an export of long turns.
CANDIDATE_TOKENS = 64

Turn = tuple[str, str, tuple[str, ...]]  # (conversation id, speaker, messages)


@dataclass(frozen=True)
class RankItem:
    """One context's candidates; candidates[0] is the true reply (the order the model sees is
    irrelevant: each candidate is scored on its own)."""

    context: int  # index into the job's contexts
    candidates: tuple[tuple[str, ...], ...]


def _draw(pool: list[tuple[str, ...]], count: int, rng: random.Random, taken: set) -> list:
    found = []
    for reply in rng.sample(pool, len(pool)):
        if len(found) == count:
            break
        if reply not in taken:
            taken.add(reply)
            found.append(reply)
    return found


def build_items(contexts: Sequence[Context], turns: Sequence[Turn], candidates: int,
                seed: int) -> list[RankItem]:
    """Candidates for each context (those without N-1 distinct distractors are left out)."""
    items = []
    for index, context in enumerate(contexts):
        rng = random.Random(f"{seed}:{index}")
        same = [m for c, s, m in turns if s == context.respondent and c != context.conversation_id]
        other = [m for c, s, m in turns if s != context.respondent and c != context.conversation_id]
        taken = {context.reply}
        want = candidates - 1
        picked = _draw(same, want // 2, rng, taken)
        picked += _draw(other, want - len(picked), rng, taken)
        picked += _draw(same, want - len(picked), rng, taken)
        if len(picked) == want:
            items.append(RankItem(index, (context.reply, *picked)))
    return items


def candidate_ids(encoder: ChatEncoder, respondent: str, reply: tuple[str, ...],
                  max_length: int) -> list[int]:
    """A candidate reply's scored ids: its messages and end token, without the header (its first
    CANDIDATE_TOKENS at most)."""
    ids, _ = encoder.block(ChatTurn(respondent, reply), trained=True)
    head = len(encoder.header(respondent))
    return ids[head:len(ids) - len(encoder.newline_ids)][: min(max_length // 2, CANDIDATE_TOKENS)]


def means_after(model, found: Prefilled, bodies: list[list[int]]) -> list[float]:
    """Mean log-likelihood per token of each body after an already run prompt (its cache is left
    as it was, so generation can continue from it).

    Every body runs in one packed row after the prompt's KV cache, each body seeing the prompt and
    its own earlier tokens only (a block-diagonal mask, positions restarting after the prompt):
    the same numbers as scoring each body's window whole, for the bodies' real tokens only (a
    padded batch of N rows as wide as the longest body cost 1.7x more on chat-length replies)."""
    import torch

    device = next(model.parameters()).device
    owner = torch.tensor([b for b, body in enumerate(bodies) for _ in body], device=device)
    offset = torch.tensor([j for body in bodies for j in range(len(body))], device=device)
    flat = torch.tensor([[t for body in bodies for t in body]], device=device)
    if not flat.numel():
        return [float("-inf")] * len(bodies)
    dtype = next(model.parameters()).dtype
    order = torch.arange(len(offset), device=device)
    sees = (owner[:, None] == owner[None, :]) & (order[:, None] >= order[None, :])
    sees = torch.cat([torch.ones(len(offset), found.length, dtype=torch.bool, device=device),
                      sees], dim=1)
    mask = torch.zeros(sees.shape, dtype=dtype, device=device)
    mask.masked_fill_(~sees, torch.finfo(dtype).min)
    with torch.inference_mode():
        tail = model(input_ids=flat, attention_mask=mask[None, None], cache=found.cache,
                     position_ids=(found.length + offset)[None], use_cache=True)
        found.cache.crop(-flat.shape[1])  # back to the prompt alone
        # a body's first token is predicted by the prompt's last position (row 0 below), its
        # token j by its own position j - 1 (row p of the packed row's position p - 1, + 1)
        logits = torch.cat([found.logits.to(tail.logits.dtype), tail.logits[0]]).float()
        source = torch.where(offset == 0, 0, order)
        logprobs = torch.log_softmax(logits[source], dim=-1).gather(-1, flat[0, :, None])[:, 0]
    sums = torch.zeros(len(bodies), device=device).index_add_(0, owner, logprobs)
    return [sums[b].item() / len(body) if body else float("-inf")
            for b, body in enumerate(bodies)]


def rank_of_truth(scores: Sequence[float]) -> int:
    """1 + the distractors scored at least as high as the true reply (ties count against it)."""
    return 1 + sum(score >= scores[0] for score in scores[1:])


def chance(candidates: int) -> tuple[float, float]:
    """(hits@1, MRR) of a model that ranks at random."""
    return 1 / candidates, sum(1 / r for r in range(1, candidates + 1)) / candidates




def ranking_rows(contexts: Sequence[Context], items: Sequence[RankItem], tuned: Sequence[int],
                 base: Sequence[int], candidates: int, seed: int) -> dict[str, RankingRow]:
    """Per speaker: hits@1 and MRR of both models with paired intervals, or why there is none."""
    from doppel.eval import bootstrap
    from doppel.eval.results import RankingRow

    if candidates < 2:  # --rank-candidates 0: not run
        return {}
    hits_chance, mrr_chance = chance(candidates)
    rows = {}
    for speaker in dict.fromkeys(c.respondent for c in contexts):
        mine = [i for i, item in enumerate(items) if contexts[item.context].respondent == speaker]
        row = RankingRow(len(mine), candidates, hits_chance, mrr_chance)
        if len(mine) < MIN_ITEMS:
            row.note = (f"too few held-out turns to rank ({len(mine)} contexts with {candidates} "
                        f"distinct candidates; at least {MIN_ITEMS} needed)")
            rows[speaker] = row
            continue
        hits = [[float(ranks[i] == 1) for i in mine] for ranks in (tuned, base)]
        mrr = [[1 / ranks[i] for i in mine] for ranks in (tuned, base)]
        row.fine_tuned_hits, row.base_hits = (sum(h) / len(h) for h in hits)
        row.fine_tuned_mrr, row.base_mrr = (sum(m) / len(m) for m in mrr)
        row.intervals = bootstrap.paired(bootstrap.mean_of(hits[0]), bootstrap.mean_of(hits[1]),
                                         len(mine), seed)
        row.mrr_intervals = bootstrap.paired(bootstrap.mean_of(mrr[0]),
                                             bootstrap.mean_of(mrr[1]), len(mine), seed)
        rows[speaker] = row
    return rows
