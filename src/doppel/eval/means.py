"""Means across the evaluated speakers (the summary table's rows), with paired intervals.

A speaker's share or distance already has its interval (eval/runner.py); the mean across speakers
is resampled over every context of the run together (bootstrap.mean_over_groups), base and
fine-tuned paired on the same draws, so the summary can say whether its change is within noise.
"""

from __future__ import annotations

from collections.abc import Sequence

from doppel.eval import bootstrap, style
from doppel.eval.attribution import Attributor
from doppel.eval.results import MeanRow


def membership(respondents: Sequence[str]) -> list[tuple[str, int]]:
    """(speaker, index among that speaker's contexts) for each context, in order."""
    seen: dict[str, int] = {}
    found = []
    for speaker in respondents:
        found.append((speaker, seen.get(speaker, 0)))
        seen[speaker] = seen.get(speaker, 0) + 1
    return found


def _row(tuned: dict[str, bootstrap.Statistic], base: dict[str, bootstrap.Statistic],
         respondents: Sequence[str], seed: int) -> MeanRow:
    units = membership(respondents)
    every = list(range(len(units)))
    tuned_mean = bootstrap.mean_over_groups(tuned, units)
    base_mean = bootstrap.mean_over_groups(base, units)
    return MeanRow(len(tuned), tuned_mean(every), base_mean(every),
                   bootstrap.paired(tuned_mean, base_mean, len(units), seed))


def _grouped(respondents: Sequence[str], values: Sequence) -> dict[str, list]:
    found: dict[str, list] = {}
    for speaker, value in zip(respondents, values, strict=True):
        found.setdefault(speaker, []).append(value)
    return found


def style_mean(respondents: Sequence[str], real: Sequence, tuned: Sequence, base: Sequence,
               vocab: dict[str, set[str]], seed: int) -> MeanRow:
    """The mean across speakers of the style distance (lower is closer)."""
    real_by = _grouped(respondents, real)

    def statistics(replies: Sequence) -> dict[str, bootstrap.Statistic]:
        return {s: style.distance_statistic(r, real_by[s], vocab.get(s))
                for s, r in _grouped(respondents, replies).items()}

    return _row(statistics(tuned), statistics(base), respondents, seed)


def attribution_mean(respondents: Sequence[str], tuned: Sequence, base: Sequence,
                     attributor: Attributor, seed: int) -> MeanRow | None:
    """The mean across speakers (those the classifier knows) of the share attributed to them."""
    known = [i for i, s in enumerate(respondents) if s in attributor.classes]
    if not known:
        return None
    speakers = [respondents[i] for i in known]

    def statistics(replies: Sequence) -> dict[str, bootstrap.Statistic]:
        hits = [float(g == s) for g, s in
                zip(attributor.predict([replies[i] for i in known]), speakers, strict=True)]
        return {s: bootstrap.mean_of(h) for s, h in _grouped(speakers, hits).items()}

    return _row(statistics(tuned), statistics(base), speakers, seed)
