"""The blind test's answers, when friends have given some: how often they took the twin's reply
for the real one (doppel/blindtest/results.py computes it; `doppel blindtest RUN --results` prints
the same section)."""

from __future__ import annotations

import os

from doppel.blindtest.report import markdown
from doppel.blindtest.results import Results, summarize
from doppel.blindtest.store import BlindStore, default_store_path
from doppel.eval import markdown as md
from doppel.eval.metric import Metric
from doppel.eval.tables import Report


def compute(m) -> Results | None:
    """The results of the run's blind test (the store next to the run folder), if answered."""
    if m.info.path is None:
        return None
    path = default_store_path(m.info.path)
    if not path.is_file():
        return None
    with BlindStore(path, create=False) as store:
        meta = store.meta()
        if meta.get("run") != os.path.abspath(m.info.path):
            return None
        answers = store.answers()
        if not answers:
            return None
        return summarize(store.items(), answers, meta["persona"])


def section(r: Report) -> str:
    parts = [f"**{md.escape(run.name)}**\n\n"
             + markdown(run.metrics["blindtest"], heading="##", title=False)
             for run in r.runs if run.metrics.get("blindtest") is not None]
    return "\n".join(parts)


METRIC = Metric("blindtest", Results | None, compute, title="Which one is real? Blind test",
                section=section, default=lambda: None)
