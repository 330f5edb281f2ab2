"""The report's first paragraph: what the numbers say about the user, in words a person reads.

"Replies sound more like you", "fit the conversation" and "within noise" come from the same rows
as the tables (the user's perplexity, style distance, attribution and ranking), and a change is
only called a change when its paired 95% interval leaves out 0.
"""

from __future__ import annotations

from doppel.eval import markdown as md
from doppel.eval.results import EvalResults, RunResult


def _change(label: str, row, lower_is_better: bool, pair=None) -> tuple[str, bool] | None:
    """('label base -> tuned (better/worse)', within noise) or None when a number is missing.

    `pair` picks (fine-tuned, base) from the row when they are not its fine_tuned and base."""
    if row is None:
        return None
    tuned, base = pair(row) if pair else (row.fine_tuned, row.base)
    if tuned is None or base is None:
        return None
    noisy = row.intervals is None or row.intervals.within_noise
    better = (tuned < base) == lower_is_better
    verdict = "within noise" if noisy else ("better" if better else "worse")
    return f"{label} {md.number(base)} -> {md.number(tuned)} ({verdict})", noisy


def _unmeasured(run: RunResult, me: str) -> str:
    """Why nothing is said about the user's voice."""
    if me not in run.trained_speakers:
        return "not measured (this run was not trained to play you)"
    row = run.perplexity.speakers.get(me)
    if me not in run.speakers and (row is None or not row.tokens):
        return "not measured (the dataset holds no held-out messages from you)"
    return "not measured"


def run_sentence(run: RunResult, me: str, ceiling_informative: bool) -> str:
    voice = [_change("perplexity of your held-out messages", run.perplexity.speakers.get(me),
                     True),
             _change("style distance", run.style.get(me), True,
                     lambda row: (row.distance, row.base_distance))]
    if ceiling_informative:
        voice.append(_change("replies attributed to you", run.attribution.get(me), False))
    ranking = run.ranking.get(me)
    fit = _change("the real reply ranked first", ranking, False)
    found = [v for v in voice if v]
    noisy = [text.rsplit(" (", 1)[0] for text, is_noisy in [*found, *([fit] if fit else [])]
             if is_noisy]
    parts = [f"**{md.escape(run.name)}**: replies sound more like you: "
             + ("; ".join(text for text, _ in found) or _unmeasured(run, me))]
    if fit:
        parts.append(f"fit the conversation: {fit[0]}, chance {md.number(ranking.chance_hits)}")
    elif ranking is not None and ranking.note:
        parts.append(f"fit the conversation: {ranking.note}")
    parts.append("within noise: " + ("; ".join(noisy) if noisy else "nothing"))
    return "; ".join(parts) + "."


def plain_summary(everything: EvalResults) -> str:
    """One paragraph per run, about the exporting user, before any table."""
    from doppel.eval.attribution import informative, not_informative_note

    me = everything.dataset.me
    useful = informative(everything.classifier)
    lines = [run_sentence(run, me, useful) for run in everything.runs]
    if not useful:
        lines.append("Attribution is not informative for this export: "
                     + not_informative_note(everything.classifier))
    return "\n\n".join(lines)
