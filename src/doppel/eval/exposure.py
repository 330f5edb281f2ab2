"""Exposure of a planted secret, as in Carlini et al.'s "The Secret Sharer" (USENIX Security 2019).

The model scores the secret sentence as the user's message after the planted history, in the chat
format, and the same sentence with R random values of the same shape in its place. The rank of
the true value among the R + 1 (1 = the likeliest; ties count against it) gives
exposure = log2(R + 1) - log2(rank): about 1 bit for a model that never saw the secret (its rank
is anywhere, R/2 on average) and log2(R + 1) for one that ranks it first, i.e. memorised it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from doppel.chatformat import ChatEncoder, ChatTurn, group_turns
from doppel.eval.canaries import Secret

CHUNK = 64  # candidates scored together in one packed row (logits over the vocabulary per token)


def exposure(rank: int, candidates: int) -> float:
    return math.log2(candidates + 1) - math.log2(rank)


def _message_ids(encoder: ChatEncoder, speaker: str, text: str) -> list[int]:
    """The message's own tokens as the chat format writes them, without header or end token."""
    ids, _ = encoder.block(ChatTurn(speaker, (text,)), trained=True)
    return ids[len(encoder.header(speaker)):len(ids) - 1 - len(encoder.newline_ids)]


def log_likelihoods(model, tokenizer, secret: Secret, values: Sequence[str],
                    max_length: int) -> list[float]:
    """Each value's sentence: its total log-likelihood as the speaker's message after history."""
    from doppel.eval.ranking import means_after
    from doppel.infer.batcher import prefill

    encoder = ChatEncoder(tokenizer)
    bodies = [_message_ids(encoder, secret.speaker, secret.template.format(v)) for v in values]
    prompt = encoder.prompt(group_turns(secret.history), secret.speaker, max_length,
                            reserve=max(map(len, bodies)))
    ready = prefill(model, prompt)  # once: every chunk is scored after the same cache
    totals = []
    for start in range(0, len(bodies), CHUNK):
        chunk = bodies[start:start + CHUNK]
        means = means_after(model, ready, chunk)
        totals += [mean * len(body) for mean, body in zip(means, chunk, strict=True)]
    return totals


def secret_rank(model, tokenizer, secret: Secret, max_length: int) -> int:
    """The true value's rank among itself and the secret's R random alternatives."""
    from doppel.eval.ranking import rank_of_truth

    return rank_of_truth(log_likelihoods(model, tokenizer, secret,
                                         [secret.value, *secret.alternatives()], max_length))
