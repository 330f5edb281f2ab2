"""Seeded replies for held-out contexts through the shared inference engine's continuous batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
