"""The summary's means across speakers (style distance, attribution share) with paired intervals;
the style and attribution metrics show them in the summary table."""

from __future__ import annotations

from doppel.eval import means
from doppel.eval.metric import Metric
from doppel.eval.results import MeanRow


def compute(m) -> dict[str, MeanRow]:
    respondents = [c.respondent for c in m.job.contexts]
    found = {"style": means.style_mean(respondents, [list(c.reply) for c in m.job.contexts],
                                       m.tuned.replies, m.base.replies, m.shared.vocab, m.seed)}
    if m.shared.attributor is not None:
        row = means.attribution_mean(respondents, m.tuned.replies, m.base.replies,
                                     m.shared.attributor, m.seed)
        if row is not None:
            found["attribution"] = row
    return found


METRIC = Metric("means", dict[str, MeanRow], compute, default=dict, timed=True)
