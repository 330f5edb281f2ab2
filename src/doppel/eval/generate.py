"""Seeded replies for held-out contexts through the shared inference engine's continuous batch,
and the ranking test scored after the same prompts (each context's prompt runs once for both)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from doppel.eval import ranking
from doppel.eval.contexts import Context
from doppel.eval.options import EvalOptions


def reply_all(
    engine, histories: Sequence[Sequence[tuple[str, str]]], respondents: Sequence[str],
    options: EvalOptions, advance: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """One reply (its messages) per history, at most options.batch_size decoding at once.

    `Engine.reply_many` refills a finished reply's row at the next step (no row decodes padding
    while the batch's longest reply finishes) and seeds reply i with seed + i, so the same
    inputs and options give the same replies whatever the batch size.
    """
    replies = engine.reply_many(histories, respondents, options.sampling,
                                max_batch=options.batch_size, advance=advance)
    return [list(reply) for reply in replies]


@dataclass
class RankedReplies:
    """Each context's reply, each ranking item's candidate scores (mean log-likelihood per token,
    the true reply first), and the seconds spent scoring candidates (the prompts are shared)."""

    replies: list[list[str]]
    scores: list[list[float]]
    ranking_seconds: float = 0.0


def ranked_replies(engine, contexts: Sequence[Context], items: Sequence[ranking.RankItem],
                   options: EvalOptions, advance: Callable[[int], None] | None = None,
                   ) -> RankedReplies:
    """Replies as `reply_all` gives them, and the ranking test, from one prefill per context.

    A context's prompt (history and the respondent's header) is what both need: it runs once,
    its candidates are scored after its KV cache (`ranking.means_after`), and its reply is
    generated from the same cache. The prompt leaves room for the longer of a reply and a
    candidate, so both read the same ids."""
    from doppel.infer.batcher import prefill

    reserve = max(options.sampling.max_new_tokens, ranking.CANDIDATE_TOKENS)
    prompts = [engine.prompt_ids(c.history, c.respondent, reserve) for c in contexts]
    item_of = {item.context: n for n, item in enumerate(items)}
    found = RankedReplies([], [[] for _ in items])

    def prefilled(index: int):
        ready = prefill(engine.model, prompts[index])
        if index in item_of:
            started = time.perf_counter()
            item = items[item_of[index]]
            bodies = [ranking.candidate_ids(engine.encoder, contexts[index].respondent, reply,
                                            engine.max_length) for reply in item.candidates]
            found.scores[item_of[index]] = ranking.means_after(engine.model, ready, bodies)
            found.ranking_seconds += time.perf_counter() - started
        return ready

    replies = engine.reply_prompts(prompts, options.sampling, options.batch_size, advance,
                                   prefilled)
    found.replies = [list(reply) for reply in replies]
    return found
