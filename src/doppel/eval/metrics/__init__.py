"""The metric registry: the runner computes, the report shows and results.json stores every
metric registered here, in this order (the report's sections are numbered by it).

A new metric is one module under eval/metrics/ defining a `Metric` (eval/metric.py) plus one
`register(...)` line below; nothing else changes (docs/architecture.md "Adding a metric").
"""

from __future__ import annotations

from dataclasses import fields

from doppel.eval.metric import Metric
from doppel.eval.metrics import (
    attribution,
    blindtest,
    canaries,
    discriminator,
    means,
    memory,
    perplexity,
    ranking,
    samples,
    style,
    transcripts,
)
from doppel.eval.results import RunResult

__all__ = ["METRICS", "Metric", "register", "unregister"]

METRICS: list[Metric] = []


def register(metric: Metric) -> Metric:
    """Add a metric after the others; its name is its key in each run of results.json."""
    taken = {f.name for f in fields(RunResult)} | {m.name for m in METRICS}
    if metric.name in taken:
        raise ValueError(f"metric name {metric.name!r} is already taken")
    METRICS.append(metric)
    return metric


def unregister(name: str) -> None:
    """Remove a metric (a test's toy metric)."""
    METRICS[:] = [m for m in METRICS if m.name != name]


register(perplexity.METRIC)
register(style.METRIC)
register(attribution.METRIC)
register(discriminator.METRIC)
register(ranking.METRIC)
register(transcripts.METRIC)
register(samples.METRIC)
register(means.METRIC)
register(canaries.METRIC)
register(blindtest.METRIC)
register(memory.METRIC)
