"""Memory on and off, side by side: the same run's held-out perplexity, ranking test and a fact
test, each with paired intervals (eval/memory.py does the work while the run is loaded).

The fact test is where memory shows: held-out turns naming a fact word (a name, a place, a pet,
a number: memory/fact_words.py's rule) that the speaker's earlier chats in scope hold. Its
numbers are the mean log-likelihood per token of that word's tokens with and without the
memories retrieved for the context, and recall@k, the share of those turns whose retrieved
memories hold the word. An average over all tokens hides it
(issue 20's prototype: within noise on all replies, +0.87 nats on the fact words).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from doppel.chatformat import MESSAGE_SEP, ChatEncoder, group_turns
from doppel.eval import markdown as md
from doppel.eval import perplexity, ranking
from doppel.eval.bootstrap import Intervals
from doppel.eval.memory import K
from doppel.eval.metric import Metric, Said
from doppel.eval.plain import said
from doppel.eval.results import PerplexityRow, RankingRow, RunResult
from doppel.eval.tables import Report, with_interval

HEADING = "memory (with / without)"
ON = "on"
WORDS_SHOWN = 12  # the fact words the report lists, most-scored first: enough to judge them


@dataclass
class FactRow:
    """The fact test for one run: memory's change on the fact words, and retrieval recall@k."""

    turns: int  # held-out turns scored (--fact-turns at most)
    tokens: int  # fact-word tokens scored over them
    with_memory: float | None = None  # mean log-likelihood per token of the word (nats)
    without: float | None = None
    intervals: Intervals | None = None  # 95% bootstrap over the turns, paired (with - without)
    k: int = 0  # memories retrieved per turn
    recall: float | None = None  # share of turns whose memories hold the word
    recall_interval: tuple[float, float] | None = None
    # the fact words the turns named, most turns first (WORDS_SHOWN at most), for the reader to
    # judge; each one's kind (fact_words.KINDS), and how many distinct words there were
    words: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    distinct: int = 0

    @property
    def fine_tuned(self) -> float | None:  # the shared tables' and words' names
        return self.with_memory

    @property
    def base(self) -> float | None:
        return self.without


@dataclass
class MemoryResult:
    """The same run with memories and without. In each row, `fine_tuned` is with memory and
    `base` without (both the fine-tuned run), so the shared tables and words read them."""

    state: str  # "on", or why memory was not measured
    contexts: int = 0  # held-out contexts ranked
    with_memories: int = 0  # of them, those whose search found memories
    perplexity: dict[str, PerplexityRow] = field(default_factory=dict)
    overall: PerplexityRow | None = None
    ranking: dict[str, RankingRow] = field(default_factory=dict)
    facts: FactRow | None = None


@dataclass
class MemoryProbe:
    """What the probe measured while the run was loaded (not stored: compute pairs it)."""

    state: str
    scored: dict[str, perplexity.Scored] = field(default_factory=dict)
    ranks: list[int] = field(default_factory=list)
    found: int = 0
    spans: list[Any] = field(default_factory=list)  # eval.memory.SpanScore per fact turn
    hits: list[float] = field(default_factory=list)
    words: list[tuple[str, str]] = field(default_factory=list)  # (word, kind) per fact turn


def _facts(p, index, engine) -> tuple[list, list[float], list[tuple[str, str]]]:
    from doppel.eval import fact_turns, memory
    from doppel.memory.facts import holds
    from doppel.memory.scope import ChatPartners

    turns = fact_turns.fact_turns(p.job.dataset, p.job.ppl_speakers, p.options.history_turns,
                                  p.options.fact_turns, p.options.sampling.seed)
    partners = ChatPartners.of(p.job.dataset)
    prompts, bodies, hits = [], [], []
    for turn in turns:
        found = memory.context_memories(index, turn.context, turn.before, engine.max_length,
                                        partners)
        hits.append(float(holds(list(found), turn.word)))
        body, span = fact_turns.span_ids(engine.tokenizer, MESSAGE_SEP.join(turn.context.reply),
                                         turn.start, turn.end)
        c = turn.context
        prompts.append(tuple(engine.prompt_ids(c.history, c.respondent, len(body), used)
                             for used in ((), found)))
        bodies.append((body, span))
    keep = [n for n, (_, span) in enumerate(bodies) if span]
    spans = memory.span_scores(engine, [prompts[n] for n in keep], [bodies[n] for n in keep],
                               p.options.ppl_batch_tokens) if keep else []
    return spans, [hits[n] for n in keep], [(turns[n].word, turns[n].kind) for n in keep]


def probe(p) -> MemoryProbe | None:
    """With the run loaded (not its base): memory-on perplexity on the same conversations, the
    ranking test on the same candidates with memories, and the fact test."""
    from doppel.eval import memory
    from doppel.memory.scope import ChatPartners
    from doppel.train.data import WindowMemories

    if p.base or p.job.dataset is None:
        return None
    dataset = p.job.dataset
    index = memory.open_memory(dataset.path, p.options.memory)
    if index is None:
        why = "--memory off" if p.options.memory == "off" else "the dataset has no memory index"
        return MemoryProbe(f"not measured ({why})")
    engine, seed = p.engine, p.options.sampling.seed
    starts = {c.id: min(m.time for m in c.messages) for c in dataset.conversations("val")}
    partners = ChatPartners.of(dataset)
    found = [memory.context_memories(index, c, starts[c.conversation_id], engine.max_length,
                                     partners) for c in p.job.contexts]
    reserve = max(p.options.sampling.max_new_tokens, ranking.CANDIDATE_TOKENS)
    ranks = memory.rank_with(engine, p.job.contexts, p.job.rank_items, found, reserve)
    conversations = list(dataset.conversations("val"))
    turns = [group_turns((m.speaker, m.text) for m in c.messages)
             for c in conversations]
    encoder = ChatEncoder(engine.tokenizer)
    off = perplexity.plan_windows(encoder, turns, p.job.ppl_speakers, p.job.max_length,
                                  p.options.ppl_max_tokens, seed)
    pickers = WindowMemories(index, 1.0, dataset, p.job.max_length, seed)
    plan = memory.memory_plan(encoder, conversations, turns, off, pickers, p.job.max_length)
    scored = perplexity.score(engine.model, plan, perplexity.pad_id(engine.tokenizer),
                              p.options.ppl_batch_tokens)
    spans, hits, words = _facts(p, index, engine)
    index.close()
    return MemoryProbe(ON, scored, ranks, sum(bool(f) for f in found), spans, hits, words)


def _fact_row(found: MemoryProbe, seed: int) -> FactRow:
    from doppel.eval import bootstrap

    spans = found.spans
    named = Counter(word for word, _ in found.words)
    shown = sorted(named, key=lambda w: (-named[w], w))[:WORDS_SHOWN]
    kinds = dict(found.words)
    row = FactRow(len(spans), sum(s.tokens for s in spans), k=K, words=shown,
                  kinds={w: kinds[w] for w in shown}, distinct=len(named))
    if not spans:
        return row
    with_memory = [s.with_memory for s in spans]
    without = [s.without for s in spans]
    row.with_memory, row.without = (sum(v) / len(v) for v in (with_memory, without))
    row.intervals = bootstrap.paired(bootstrap.mean_of(with_memory), bootstrap.mean_of(without),
                                     len(spans), seed)
    row.recall = sum(found.hits) / len(found.hits)
    row.recall_interval = bootstrap.interval(bootstrap.mean_of(found.hits), len(spans), seed)
    return row


def compute(m) -> MemoryResult:
    found: MemoryProbe | None = m.tuned.probes.get("memory")
    if found is None:
        return MemoryResult("not measured")
    if found.state != ON:
        return MemoryResult(found.state)

    def row(on: perplexity.Scored, off: perplexity.Scored) -> PerplexityRow:
        return PerplexityRow(on.tokens, on.perplexity, off.perplexity,
                             perplexity.intervals(on, off, m.seed))

    off = m.tuned.scored
    rows = {s: row(on, off[s]) for s, on in found.scored.items() if s in off}
    ranked = ranking.ranking_rows(m.job.contexts, m.job.rank_items, found.ranks, m.tuned.ranks,
                                  m.options.rank_candidates, m.seed)
    return MemoryResult(ON, len(m.job.contexts), found.found, rows,
                        row(perplexity.overall(found.scored), perplexity.overall(off)), ranked,
                        _fact_row(found, m.seed))


# --- the report ----------------------------------------------------------------------------

def _delta(with_memory: float | None, without: float | None, found: Intervals | None) -> str:
    """'+0.12 [0.03, 0.20]': with memory minus without, and its paired 95% interval."""
    if with_memory is None or without is None:
        return "n/a"
    words = "" if found is None else f" [{found.change[0]:+.2f}, {found.change[1]:+.2f}]"
    return f"{with_memory - without:+.2f}{words}"


def _change(row) -> str:
    if row is None:
        return "n/a"
    return _delta(row.fine_tuned, row.base, row.intervals)


def _ppl_table(result: MemoryResult) -> str:
    rows = [[md.escape(s), md.number(r.tokens), md.number(r.base), md.number(r.fine_tuned),
             _change(r)] for s, r in result.perplexity.items()]
    if result.overall:
        r = result.overall
        rows.append(["all trained speakers", md.number(r.tokens), md.number(r.base),
                     md.number(r.fine_tuned), _change(r)])
    return md.table(["speaker", "tokens", "perplexity without", "with memory",
                     "change [95%]"], rows)


def _rank_table(result: MemoryResult) -> str:
    rows = []
    for speaker, r in result.ranking.items():
        if r.note:
            rows.append([md.escape(speaker), md.number(r.contexts), md.escape(r.note), "", "",
                         "", "", ""])
            continue
        rows.append([md.escape(speaker), md.number(r.contexts),
                     md.number(r.base_hits), md.number(r.fine_tuned_hits), _change(r),
                     md.number(r.base_mrr), md.number(r.fine_tuned_mrr),
                     _delta(r.fine_tuned_mrr, r.base_mrr, r.mrr_intervals)])
    if not rows:
        return "Not run (--rank-candidates 0).\n"
    return md.table(["speaker", "contexts", "hits@1 without", "with memory", "change [95%]",
                     "MRR without", "with memory", "change [95%]"], rows)


def _fact_table(row: FactRow | None) -> str:
    if row is None or not row.turns:
        return ("No fact turns: no held-out turn names a fact word (a name, a number, a word "
                "that belongs to one chat) that an earlier chat in its scope holds (or "
                "--fact-turns 0).\n")
    recall = with_interval(row.recall, row.recall_interval)
    table = md.table(["turns", "word tokens", "log-likelihood per token without",
                      "with memory", "change [95%]", f"recall@{row.k} [95%]"],
                     [[md.number(row.turns), md.number(row.tokens), md.number(row.without),
                       md.number(row.with_memory), _change(row), recall]])
    words = ", ".join(md.escape(f"{w} ({row.kinds[w]})" if row.kinds.get(w) else w)
                      for w in row.words)
    shown = "" if row.distinct <= len(row.words) else f", {len(row.words)} of {row.distinct}"
    return f"{table}\nThe fact words it scored (most turns first{shown}): {words}.\n"


def _verdict(row, what: str, lower_is_better: bool) -> str:
    if row is None or row.fine_tuned is None or row.base is None:
        return f"{what}: not measured"
    if row.intervals is None or row.intervals.within_noise:
        return f"{what}: within noise"
    better = (row.fine_tuned < row.base) == lower_is_better
    return f"{what}: memory {'helped' if better else 'hurt'}"


def _run_section(run: RunResult) -> str:
    result: MemoryResult = run.metrics.get("memory") or MemoryResult("not measured")
    if result.state != ON:
        return f"**{md.escape(run.name)}**: memory {md.escape(result.state)}.\n"
    verdicts = "; ".join([_verdict(result.facts, "fact words", False),
                          _verdict(result.overall, "perplexity", True)])
    return f"""**{md.escape(run.name)}** ({verdicts}). Memories found for \
{result.with_memories} of {result.contexts} held-out contexts.

Fact test:

{_fact_table(result.facts)}
Held-out perplexity (the conversations the perplexity section drew):

{_ppl_table(result)}
Ranking test (the same candidates):

{_rank_table(result)}"""


def section(r: Report) -> str:
    runs = "\n".join(_run_section(run) for run in r.runs)
    return f"""The same run scored without and with memories: up to {K} stretches of earlier \
chats retrieved for each held-out context, only from conversations that ended before it began \
(never its own), in the scope of the people the speaker is talking to, in the memories block the \
run saw in training. The fact test scores held-out turns that name a fact word that an earlier \
conversation in scope already held (a name, a number or a word that belongs to one chat far more \
than to the others, recurring there: the words are listed, to judge): the mean \
log-likelihood per token of that word (higher is better), and recall@k, the share of those turns \
whose retrieved memories hold it. Changes are with memory minus without, paired (`--memory off` \
measures none of it).

{runs}"""


def plain(run: RunResult, me: str, r: Report) -> list[Said]:
    result: MemoryResult | None = run.metrics.get("memory")
    if result is None or result.state != ON:
        return []
    found = said(HEADING, "fact words' log-likelihood per token without -> with memory",
                 result.facts if result.facts and result.facts.turns else None, False,
                 pair=lambda row: (row.with_memory, row.without))
    found += said(HEADING, "held-out perplexity without -> with memory", result.overall, True)
    return found


def summary(run: RunResult, me: str, r: Report) -> dict[str, tuple[str, object]]:
    result: MemoryResult | None = run.metrics.get("memory")
    if result is None or result.state != ON or result.facts is None or not result.facts.turns:
        return {}
    row = result.facts
    return {"fact words' log-likelihood per token (with / without memory)": (
        f"{md.number(row.with_memory)} / {md.number(row.without)}; recall@{row.k} "
        f"{md.number(row.recall)}", row)}


METRIC = Metric("memory", MemoryResult, compute, probe=probe,
                title="Memory: the same run with and without", section=section, plain=plain,
                summary=summary, default=lambda: None)  # a file from before memory: none
