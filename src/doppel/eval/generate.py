"""Seeded, batched replies for held-out contexts through the shared inference engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from doppel.eval.options import EvalOptions


def reply_all(
    engine, histories: Sequence[Sequence[tuple[str, str]]], respondents: Sequence[str],
    options: EvalOptions, advance: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """One reply (its messages) per history, in batches of similar length, each batch seeded.

    Batches are formed in order of history length (less padding); the seed of a batch depends
    only on its position, so the same inputs and options give the same replies.
    """
    order = sorted(range(len(histories)), key=lambda i: sum(len(t) for _, t in histories[i]))
    replies: list[list[str]] = [[] for _ in histories]
    size = max(1, options.batch_size)
    for number, start in enumerate(range(0, len(order), size)):
        chunk = order[start:start + size]
        out = engine.reply_batch(
            [list(histories[i]) for i in chunk], [respondents[i] for i in chunk],
            options.sampling.replace(seed=options.sampling.seed + number),
        )
        for i, reply in zip(chunk, out, strict=True):
            replies[i] = list(reply)
        if advance:
            advance(len(chunk))
    return replies
