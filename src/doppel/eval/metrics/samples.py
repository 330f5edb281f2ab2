"""A few held-out contexts with the real reply and both models' replies, for reading."""

from __future__ import annotations

from doppel.eval import markdown as md
from doppel.eval.metric import Metric
from doppel.eval.results import Sample
from doppel.eval.tables import Report

PER_SPEAKER = 3


def compute(m) -> list[Sample]:
    shown: dict[str, int] = {}
    rows = []
    for context, mine, theirs in zip(m.job.contexts, m.tuned.replies, m.base.replies,
                                     strict=True):
        if shown.get(context.respondent, 0) >= PER_SPEAKER:
            continue
        shown[context.respondent] = shown.get(context.respondent, 0) + 1
        rows.append(Sample(context.respondent, [tuple(m) for m in context.history[-4:]],
                           list(context.reply), mine, theirs))
    return rows


def section(r: Report) -> str:
    parts = []
    for run in r.runs:
        parts.append(f"### {md.escape(run.name)}\n")
        for sample in run.samples:
            parts.append(f"Context ({md.escape(sample.respondent)} replies next):\n")
            parts += [f"> **{md.escape(s)}:** {md.escape(t)}  " for s, t in sample.history]
            for label, key in (("real", "real"), ("fine-tuned", "fine_tuned"), ("base", "base")):
                text = " ⏎ ".join(md.escape(m) for m in getattr(sample, key)) or "_(no reply)_"
                parts.append(f"\n- {label}: {text}")
            parts.append("")
    return "\n".join(parts) + "\n"


METRIC = Metric("samples", list[Sample], compute, title="Samples", section=section)
