"""Perplexity of each trained speaker's held-out messages, fine-tuned against base."""

from __future__ import annotations

from doppel.eval import markdown as md
from doppel.eval import perplexity
from doppel.eval.metric import Metric, Said
from doppel.eval.plain import VOICE, said
from doppel.eval.results import Perplexity, PerplexityRow, RunResult
from doppel.eval.tables import Report, bar_plot, noise_words, pair, section_table

COUNTED = ("held-out tokens", "tokens")
# what was last measured, and where; update both together (or say nothing)
BF16_SHIFT = ("last measured, a 33-step cpu-demo run's read 0.5% higher in bf16 than in fp32, "
              "docs/benchmarks.md")


def compute(m) -> Perplexity:
    def row(mine: perplexity.Scored, theirs: perplexity.Scored) -> PerplexityRow:
        return PerplexityRow(mine.tokens, mine.perplexity, theirs.perplexity,
                             perplexity.intervals(mine, theirs, m.seed))

    tuned, base = m.tuned, m.base
    rows = {speaker: row(scored, base.scored[speaker]) for speaker, scored in tuned.scored.items()}
    return Perplexity(rows, row(perplexity.overall(tuned.scored), perplexity.overall(base.scored)),
                      tuned.precision, base.precision)


def _rows(run: RunResult) -> dict[str, PerplexityRow]:
    return run.perplexity.speakers


def scored_tokens(cap: int) -> str:
    """What the perplexity table rests on, in words."""
    if not cap:
        return "Over every held-out token each trained speaker wrote"
    return (f"Over held-out conversations drawn in a seeded order until each trained speaker has "
            f"{cap:,} tokens (`--ppl-max-tokens`; the conversation that crosses it is kept whole, "
            "and the interval shows what the sample costs)")


def precisions(runs) -> str:
    """Which precision each model's perplexity was computed in, in words."""
    found = {p for r in runs for p in (r.perplexity.precision, r.perplexity.base_precision)}
    if len(found) == 1:
        return found.pop()
    return "; ".join(f"{md.escape(r.name)} {r.perplexity.precision} (base "
                     f"{r.perplexity.base_precision})" for r in runs)


def section(r: Report) -> str:
    runs = r.runs
    return f"""{scored_tokens(r.everything.options.ppl_max_tokens)} (message and end tokens, as in \
training).
Weights in {precisions(runs)} (perplexities compare across machines at one precision: {BF16_SHIFT}).

{section_table(runs, r.cols, _rows, COUNTED)}
{noise_words(runs, _rows, "perplexity")}{r.image("perplexity")}"""


def plot(r: Report, folder) -> str | None:
    return bar_plot(r, folder, "perplexity", "Held-out perplexity per speaker (lower is better)",
                    "perplexity", _rows)


def plain(run: RunResult, me: str, r: Report) -> list[Said]:
    return said(VOICE, "perplexity of your held-out messages", run.perplexity.speakers.get(me),
                True)


def summary(run: RunResult, me: str, r: Report) -> dict[str, tuple[str, object]]:
    overall, mine = run.perplexity.overall, run.perplexity.speakers.get(me)
    return {"perplexity of all trained speakers (fine-tuned / base)": (pair(overall), overall),
            f"perplexity of {me} (fine-tuned / base)": (pair(mine), mine),
            "weights' precision (fine-tuned / base)": (
                f"{run.perplexity.precision} / {run.perplexity.base_precision}", None)}


METRIC = Metric("perplexity", Perplexity, compute, title="Perplexity on held-out messages",
                section=section, plot=plot, plain=plain, summary=summary)
