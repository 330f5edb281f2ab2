"""The report's first paragraph: what the numbers say about the user, in words a person reads.

Each registered metric says its part (Metric.plain: "replies sound more like you", "fit the
conversation"), from the same rows as the tables, and a change is only called a change when its
paired 95% interval leaves out 0. Metrics with a floor and a ceiling add how much of the gap
between the base model and the user's own messages the run closed, and, where the run is still
worse than its floor (further from the user than other friends' real messages), say so: a gap
closed from far away can still leave the twin less like the user than anyone else.
"""

from __future__ import annotations

from collections.abc import Sequence

from doppel.eval import markdown as md
from doppel.eval.metric import Metric, Said, Scale
from doppel.eval.results import RunResult

VOICE = "replies sound more like you"
GAP = "against yourself"


def change(label: str, row, lower_is_better: bool, pair=None) -> tuple[str, bool] | None:
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


def said(heading: str, label: str, row, lower_is_better: bool, pair=None,
         suffix: str = "") -> list[Said]:
    """The change of one row as the plain paragraph says it (nothing when a number is missing)."""
    found = change(label, row, lower_is_better, pair)
    if found is None:
        return []
    text, noisy = found
    return [Said(heading, text + suffix, text.rsplit(" (", 1)[0] if noisy else None)]


def _unmeasured(run: RunResult, me: str) -> str:
    """Why nothing is said about the user's voice."""
    if me not in run.trained_speakers:
        return "not measured (this run was not trained to play you)"
    row = run.perplexity.speakers.get(me) if "perplexity" in run.metrics else None
    if me not in run.speakers and (row is None or not row.tokens):
        return "not measured (the dataset holds no held-out messages from you)"
    return "not measured"


def floor_words(scale: Scale) -> str:
    """'the twin is still further from you than other speakers' real messages are (0.12 against
    0.08)', for a run on the wrong side of its floor; '' otherwise."""
    if not scale.worse_than_floor:
        return ""
    phrase = scale.floor_phrase or (f"the twin is still further from you than "
                                    f"{scale.floor_label} are")
    return f"{phrase} ({md.number(scale.run)} against {md.number(scale.floor)})"


def gap_said(metric: Metric, run: RunResult, me: str, report) -> list[Said]:
    """'style distance closes 60% of the gap between the base model and yourself', and, for a
    run still worse than its floor, that the gap closed does not make it like you yet."""
    if metric.scales is None:
        return []
    scale = metric.scales(run, report).get(me)
    if scale is None:
        return []
    title, closed, floor = metric.scale_title or metric.name, scale.gap_closed, floor_words(scale)
    if closed is None:
        return [Said(GAP, f"{title}: {floor}")] if floor else []
    noise = " (within noise)" if scale.within_noise else ""
    text = f"{title} closes {closed:.0%} of the gap between the base model and yourself{noise}"
    return [Said(GAP, text + (f", but {floor}" if floor else ""))]


def run_sentence(run: RunResult, me: str, metrics: Sequence[Metric], report) -> str:
    found = [s for m in metrics if m.plain for s in m.plain(run, me, report)]
    found += [s for m in metrics for s in gap_said(m, run, me, report)]
    parts = []
    for heading in dict.fromkeys([VOICE, *(s.heading for s in found)]):
        texts = [s.text for s in found if s.heading == heading]
        if heading == VOICE and not texts:
            texts = [_unmeasured(run, me)]
        parts.append(f"{heading}: " + "; ".join(texts))
    noisy = [s.noise for s in found if s.noise]
    parts.append("within noise: " + ("; ".join(noisy) if noisy else "nothing"))
    return f"**{md.escape(run.name)}**: " + "; ".join(parts) + "."


def plain_summary(report, metrics: Sequence[Metric]) -> str:
    """One paragraph per run, about the exporting user, before any table; then each metric's
    note on the whole eval (attribution that means nothing here)."""
    lines = [run_sentence(run, report.me, metrics, report) for run in report.runs]
    lines += [note for m in metrics if m.note and (note := m.note(report))]
    return "\n\n".join(lines)
