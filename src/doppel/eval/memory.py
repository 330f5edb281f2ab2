"""The same run scored with memories and without (eval/metrics/memory.py shows it).

Memory at eval time holds only what came before each held-out context: every search is made with
`before` = the start of the held-out conversation and that conversation excluded, in the scope of
everyone in the chat but the speaker, by person id (infer/recall.py's rule over
memory.scope.ChatPartners, shared with training: a group's silent members count), so the turn
being scored is never among its own memories. With memory on, perplexity runs on the very
conversations the plain perplexity drew, and the ranking test on the very candidates: the
changes are paired, context for context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from doppel.chatformat import MEMORY_SHARE, ChatEncoder, ChatTurn
from doppel.eval import perplexity, ranking
from doppel.eval.contexts import Context
from doppel.memory.scope import ChatPartners

K = 3  # memories per prompt, as the twin reads them (infer/recall.py's K)


def open_memory(dataset_dir: Path, memory: str | None):
    """The dataset's memory index, or None: `--memory off`, or no index and no `--memory on`
    (which builds a missing one, saying so)."""
    from doppel.memory import MEMORY_FILE, open_index

    if memory == "off" or (memory is None and not (dataset_dir / MEMORY_FILE).is_file()):
        return None
    return open_index(dataset_dir, build_if_missing=True)


def context_memories(index, context: Context, before: float, max_length: int,
                     partners: ChatPartners) -> tuple:
    """What the respondent may read before replying in a held-out context: searched with the
    last turns, from chats every other member of its chat was in, ended before the
    conversation began, never the conversation itself."""
    from doppel.infer.recall import scoped_search
    from doppel.memory import query_from_history

    return scoped_search(index, query_from_history(context.history),
                         partners.in_conversation(context.conversation_id, context.respondent),
                         k=K, before=before,
                         exclude=(context.conversation_id,),
                         token_budget=max_length // MEMORY_SHARE)


def memory_plan(encoder: ChatEncoder, conversations: Sequence, turns: Sequence[Sequence[ChatTurn]],
                off: perplexity.ScoringWindows, pickers, max_length: int
                ) -> perplexity.ScoringWindows:
    """The plain plan's (speaker, conversation) pairs again, each window opening with the
    memories `pickers(conversation)` gives it (train/data.py's WindowMemories, every window)."""
    plan = perplexity.ScoringWindows(labels={s: [] for s in off.labels})
    for speaker, units in off.units.items():
        for unit in dict.fromkeys(units):
            examples = encoder.encode(turns[unit], {speaker}, max_length,
                                      memories=pickers.for_conversation(conversations[unit]))
            heads = [len(encoder.prefix) + len(encoder.memory_block(e.memories, max_length)[0])
                     for e in examples]
            for example in perplexity.drop_overlap(examples, len(encoder.prefix),
                                                   encoder.im_start_id, heads):
                plan.add(speaker, example, unit)
    return plan


def rank_with(engine, contexts: Sequence[Context], items: Sequence[ranking.RankItem],
              memories: Sequence[tuple], reserve: int) -> list[int]:
    """The true reply's rank for each item, its prompt opening with the context's memories."""
    from doppel.infer.batcher import prefill

    ranks = []
    for item in items:
        context = contexts[item.context]
        prompt = engine.prompt_ids(context.history, context.respondent, reserve,
                                   memories[item.context])
        ready = prefill(engine.model, prompt)
        bodies = [ranking.candidate_ids(engine.encoder, context.respondent, reply,
                                        engine.max_length) for reply in item.candidates]
        ranks.append(ranking.rank_of_truth(ranking.means_after(engine.model, ready, bodies)))
    return ranks


@dataclass(frozen=True)
class SpanScore:
    """A fact's span, scored after a prompt without and with memories."""

    tokens: int
    without: float  # mean log-likelihood per token of the span (nats)
    with_memory: float


def span_scores(engine, prompts: Sequence[tuple[list[int], list[int]]],
                bodies: Sequence[tuple[list[int], list[int]]], batch_tokens: int
                ) -> list[SpanScore]:
    """For each fact: (prompt without, prompt with memories), (the reply's ids, the positions
    of the span in them); the span's tokens scored by perplexity's own scorer."""
    windows, marks = [], []
    for pair, (body, span) in zip(prompts, bodies, strict=True):
        end = max(span) + 1
        for prompt in pair:
            windows.append(prompt + body[:end])
            marks.append([False] * len(prompt) + [t in span for t in range(end)])
    losses = perplexity.token_losses(engine.model, windows, perplexity.pad_id(engine.tokenizer),
                                     batch_tokens, scored=marks)
    found = []
    for n, (_, span) in enumerate(bodies):
        means = [-sum(loss for loss, m in zip(losses[2 * n + i], marks[2 * n + i], strict=True)
                      if m) / len(span) for i in (0, 1)]
        found.append(SpanScore(len(span), means[0], means[1]))
    return found
