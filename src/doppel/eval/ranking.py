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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from doppel.chatformat import ChatEncoder, ChatTurn, group_turns
from doppel.eval.contexts import Context

if TYPE_CHECKING:
    from doppel.eval.results import RankingRow

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


def _body(encoder: ChatEncoder, respondent: str, reply: tuple[str, ...],
          max_length: int) -> list[int]:
    """A candidate reply's scored ids: its messages and end token, without the header (its first
    CANDIDATE_TOKENS at most)."""
    ids, _ = encoder.block(ChatTurn(respondent, reply), trained=True)
    head = len(encoder.header(respondent))
    return ids[head:len(ids) - len(encoder.newline_ids)][: min(max_length // 2, CANDIDATE_TOKENS)]


def rank_scores(model, tokenizer, contexts: Sequence[Context], items: Sequence[RankItem],
                max_length: int, batch_tokens: int = 2048,
                advance: Callable[[int], None] | None = None) -> list[list[float]]:
    """For each item, each candidate's mean log-likelihood per token (higher is likelier).

    All candidates of an item share one prompt (history and header), so the prompt runs once and
    its KV cache is repeated for the candidates, scored together in one padded batch: the cost
    is one prompt plus N short replies instead of N prompts (~N times less work)."""
    encoder = ChatEncoder(tokenizer)
    scores = []
    for item in items:
        context = contexts[item.context]
        bodies = [_body(encoder, context.respondent, reply, max_length)
                  for reply in item.candidates]
        prompt = encoder.prompt(group_turns(context.history), context.respondent, max_length,
                                reserve=max(map(len, bodies)))
        scores.append(candidate_means(model, prompt, bodies))
        if advance:
            advance(len(bodies))
    return scores


def candidate_means(model, prompt: list[int], bodies: list[list[int]]) -> list[float]:
    """Mean log-likelihood per token of each body after the shared prompt."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    width = max(map(len, bodies))
    ids = torch.zeros(len(bodies), width, dtype=torch.long, device=device)
    mask = torch.zeros(len(bodies), len(prompt) + width, dtype=torch.long, device=device)
    mask[:, :len(prompt)] = 1
    for row, body in enumerate(bodies):
        ids[row, :len(body)] = torch.tensor(body)
        mask[row, len(prompt):len(prompt) + len(body)] = 1
    with torch.inference_mode():
        cache = DynamicCache()
        head = model(input_ids=torch.tensor([prompt], device=device), cache=cache, use_cache=True,
                     logits_to_keep=1)
        cache.batch_repeat_interleave(len(bodies))
        tail = model(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True)
        # body token j is predicted by the prompt's last position (j = 0) or body position j - 1
        logits = torch.cat([head.logits[:, -1:].expand(len(bodies), 1, -1).to(tail.logits.dtype),
                            tail.logits[:, :-1]], dim=1).float()
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, ids[..., None])[..., 0]
    return [logprobs[row, :len(body)].mean().item() if body else float("-inf")
            for row, body in enumerate(bodies)]


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
