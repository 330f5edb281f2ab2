"""Every score between its floor and its ceiling: a table and a bar per speaker from the floor
(chance, other people's real messages) to the ceiling (the person against their own other real
messages), with the base model and the run marked (Metric.scales)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from doppel.eval import markdown as md
from doppel.eval.metric import Metric, Scale
from doppel.eval.tables import Report


def _found(report: Report, metric: Metric) -> list[tuple[str, str, Scale]]:
    """(run, speaker, scale) for every run and speaker the metric places."""
    if metric.scales is None:
        return []
    return [(run.name, speaker, scale) for run in report.runs if metric.name in run.metrics
            for speaker, scale in metric.scales(run, report).items()]


def _gap(scale: Scale) -> str:
    closed = scale.gap_closed
    found = "n/a" if closed is None else f"{closed:.0%}"
    return found + ("; worse than the floor" if scale.worse_than_floor else "")


def scales_section(report: Report, metrics: Sequence[Metric]) -> str:
    parts = []
    for metric in metrics:
        found = _found(report, metric)
        if not found:
            continue
        first = found[0][2]
        header = ["run", "speaker", f"floor: {first.floor_label}", "base", "run",
                  f"ceiling: {first.ceiling_label}", "gap closed"]
        rows = [[md.escape(run), md.escape(speaker), md.number(s.floor), md.number(s.base),
                 md.number(s.run), md.number(s.ceiling), _gap(s)] for run, speaker, s in found]
        better = "lower" if first.lower_is_better else "higher"
        parts.append(f"**{md.escape(metric.scale_title or metric.name)}** ({better} is better)"
                     f"\n\n{md.table(header, rows)}{report.image(f'{metric.name}-scale')}")
    if not parts:
        return ""
    return ("## Between floor and ceiling\n\nA number alone does not say if it is good: each "
            "score sits between a floor (what no likeness gives) and a ceiling (the best there "
            "is, where one exists). \"Gap closed\" is the share of the distance from the base "
            "model to the ceiling that the run covered (100%: as close as the person is to "
            "themselves; 0%: no better than the base model); a run still on the wrong side of "
            "its floor is marked \"worse than the floor\" here and on the bar, whatever share "
            "of the gap it closed.\n\n" + "\n".join(parts) + "\n")


def write_scales(report: Report, metrics: Sequence[Metric], folder: Path) -> dict[str, str]:
    """plots/NAME-scale.png for each metric that places its scores; metric key -> path."""
    from doppel.eval.plots import scale_bars

    made = {}
    for metric in metrics:
        found = _found(report, metric)
        if found:
            key = f"{metric.name}-scale"
            scale_bars(folder / "plots" / f"{key}.png", metric.scale_title or metric.name,
                       [(f"{speaker} ({run})", scale) for run, speaker, scale in found])
            made[key] = f"plots/{key}.png"
    return made
