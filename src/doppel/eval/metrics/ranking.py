"""Does the reply fit the conversation? The real reply ranked among other real turns by each
model's log-likelihood (the scores come from the replies' prompts: eval/generate.py)."""

from __future__ import annotations

from doppel.eval import markdown as md
from doppel.eval import ranking
from doppel.eval.metric import Metric, Said, Scale
from doppel.eval.plain import change
from doppel.eval.results import RankingRow, RunResult
from doppel.eval.tables import Report, noise_words, pair, with_interval

FIT = "fit the conversation"


def compute(m) -> dict[str, RankingRow]:
    return ranking.ranking_rows(m.job.contexts, m.job.rank_items, m.tuned.ranks, m.base.ranks,
                                m.options.rank_candidates, m.seed)


def _rows(run: RunResult) -> dict[str, RankingRow]:
    return run.ranking


def _row_cells(speaker: str, row: RankingRow) -> list[str]:
    if row.note:
        return [md.escape(speaker), md.number(row.contexts), md.escape(row.note), "", "", "", ""]
    hits, mrr = row.intervals, row.mrr_intervals
    return [md.escape(speaker), md.number(row.contexts),
            f"{md.number(row.chance_hits)} / {md.number(row.chance_mrr)}",
            with_interval(row.base_hits, hits and hits.base, 2),
            with_interval(row.fine_tuned_hits, hits and hits.fine_tuned, 2),
            with_interval(row.base_mrr, mrr and mrr.base, 2),
            with_interval(row.fine_tuned_mrr, mrr and mrr.fine_tuned, 2)]


def tables(runs) -> str:
    """Per run and speaker: hits@1 and MRR of base and fine-tuned, chance, or why there is none."""
    parts = []
    header = ["speaker", "contexts", "chance (hits@1 / MRR)", "base hits@1",
              "fine-tuned hits@1", "base MRR", "fine-tuned MRR"]
    for run in runs:
        if run.ranking:
            rows = [_row_cells(speaker, row) for speaker, row in run.ranking.items()]
            parts.append(f"**{md.escape(run.name)}**\n\n{md.table(header, rows)}"
                         f"{noise_words([run], _rows, 'hits@1')}")
    return "\n".join(parts) or "Not run (--rank-candidates 0).\n"


def section(r: Report) -> str:
    count = r.everything.options.rank_candidates
    return f"""For each held-out context the real reply is one of {count} candidates; the others
are real turns by the same speaker from other conversations and turns by other speakers. Each
model ranks them by log-likelihood per token after the context (over each candidate's first
{ranking.CANDIDATE_TOKENS} tokens): hits@1 is the share where the
real reply comes first, MRR the mean of 1/rank (chance: a model ranking at random).

{tables(r.runs)}"""


def plain(run: RunResult, me: str, r: Report) -> list[Said]:
    row = run.ranking.get(me)
    if row is None:
        return []
    if row.note:
        return [Said(FIT, row.note)]
    found = change("the real reply ranked first", row, False)
    if found is None:
        return []
    text, noisy = found
    return [Said(FIT, f"{text}, chance {md.number(row.chance_hits)}",
                 text.rsplit(" (", 1)[0] if noisy else None)]


def summary(run: RunResult, me: str, r: Report) -> dict[str, tuple[str, object]]:
    row = run.ranking.get(me)
    if row is None:
        return {}
    cell = row.note or f"{pair(row)}; chance {md.number(row.chance_hits)}"
    return {f"real reply ranked first for {me} (fine-tuned / base)": (cell, row)}


def scales(run: RunResult, r: Report) -> dict[str, Scale]:
    return {speaker: Scale(row.chance_hits, row.base_hits, row.fine_tuned_hits, None,
                           floor_label="chance", ceiling_label="none known",
                           floor_phrase="the twin still ranks your real replies below chance",
                           within_noise=Scale.noisy(row))
            for speaker, row in run.ranking.items() if not row.note}


METRIC = Metric("ranking", dict[str, RankingRow], compute,
                title="Does the reply fit the conversation? (ranking)", section=section,
                plain=plain, summary=summary, scales=scales,
                scale_title="real reply ranked first (hits@1)", default=dict)
