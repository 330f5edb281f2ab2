"""The report's shared pieces every metric's section uses: model columns, numbers with their
intervals, speaker x model tables, and the "within noise" lines (no metric lives here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doppel.eval import markdown as md
from doppel.eval.results import EvalResults, RunResult

Column = tuple[str, int, str]  # (label, run index, "fine_tuned" or "base")
Rows = Callable[[RunResult], dict[str, Any]]  # a run -> speaker -> its row of one metric


@dataclass
class Report:
    """What every metric's report hooks get: all the results, the model columns, the plots."""

    everything: EvalResults
    cols: list[Column]
    plots: dict[str, str] = field(default_factory=dict)  # metric name -> plots/NAME.png

    @property
    def runs(self) -> list[RunResult]:
        return self.everything.runs

    @property
    def me(self) -> str:
        return self.everything.dataset.me

    def image(self, name: str) -> str:
        """The markdown for a metric's plot, or nothing when it has none."""
        return f"\n![{name}]({self.plots[name]})\n" if name in self.plots else ""


def short_model(spec: str) -> str:
    """A model spec as a column label: an embedded name as is, a path by its folder or file name."""
    return Path(spec).name or spec


def columns(runs: list[RunResult]) -> list[Column]:
    """Base then fine-tuned for each run; a base shared with an earlier run is shown once."""
    found: list[Column] = []
    for i, run in enumerate(runs):
        if not run.base_shared:
            found.append((f"base ({short_model(run.baseline)})", i, "base"))
        found.append((run.name, i, "fine_tuned"))
    labels = [label for label, *_ in found]
    return [(f"{label} for {runs[index].name}" if labels.count(label) > 1 else label,
             index, which) for label, index, which in found]


def with_interval(value: float | None, found: tuple[float, float] | None, digits: int = 2) -> str:
    """A number and its 95% interval: 0.29 [0.17, 0.42]."""
    if value is None or found is None:
        return md.number(value, digits)
    return f"{md.number(value, digits)} [{md.number(found[0], digits)}, " \
           f"{md.number(found[1], digits)}]"


def pair(row, digits: int = 2) -> str:
    """'fine-tuned [interval] / base [interval]' for a row with fine_tuned, base and intervals."""
    if row is None:
        return "n/a / n/a"
    found = row.intervals
    return (f"{with_interval(row.fine_tuned, found and found.fine_tuned, digits)} / "
            f"{with_interval(row.base, found and found.base, digits)}")


def noise_lines(named: list[tuple[str, dict[str, Any]]], what: str) -> str:
    """'- run: WHAT changed beyond noise for A, B; within noise (...) for C.' per (run, rows)."""
    lines = []
    for name, rows in named:
        found = {k: r.intervals for k, r in rows.items() if getattr(r, "intervals", None)}
        noisy = [k for k, i in found.items() if i.within_noise]
        clear = [k for k, i in found.items() if not i.within_noise]
        if found:
            lines.append(f"- {md.escape(name)}: {what} changed beyond noise for "
                         f"{', '.join(map(md.escape, clear)) or 'nobody'}; within noise (the 95% "
                         f"interval of the change holds 0) for "
                         f"{', '.join(map(md.escape, noisy)) or 'nobody'}.")
    return "\n".join(lines) + "\n" if lines else ""


def noise_words(runs: list[RunResult], rows: Rows, what: str) -> str:
    """In words, per run: which speakers' changes from the base are within noise."""
    return noise_lines([(run.name, rows(run)) for run in runs], what)


def speakers(runs: list[RunResult], rows: Rows) -> list[str]:
    seen: list[str] = []
    for run in runs:
        seen += [s for s in rows(run) if s not in seen]
    return seen


def fine_tuned_or_base(row, which: str) -> float | None:
    """A row's number for one column ("fine_tuned" or "base")."""
    return getattr(row, which)


def series(runs: list[RunResult], cols: list[Column], rows: Rows,
           value: Callable[[Any, str], float | None] = fine_tuned_or_base
           ) -> dict[str, list[float | None]]:
    """Column label -> each speaker's number (a shared base is the column of the run that made
    it), for tables and plots."""
    names = speakers(runs, rows)
    found = {}
    for label, index, which in cols:
        mine = rows(runs[index])
        found[label] = [value(mine[s], which) if s in mine else None for s in names]
    return found


def section_table(runs: list[RunResult], cols: list[Column], rows: Rows, counted: tuple[str, str],
                  value: Callable[[Any, str], float | None] = fine_tuned_or_base,
                  digits: int = 2) -> str:
    """A speaker x model table for one metric, with how much data each row rests on
    (counted: the column header and the row's attribute, e.g. ("contexts", "contexts"))."""
    names = speakers(runs, rows)
    numbers = series(runs, cols, rows, value)
    header, key = counted
    table = []
    for i, s in enumerate(names):
        count = next(getattr(rows(r)[s], key) for r in runs if s in rows(r))
        cells = []
        for label, index, which in cols:
            found = getattr(rows(runs[index]).get(s), "intervals", None)
            cells.append(with_interval(numbers[label][i], getattr(found, which) if found else None,
                                       digits))
        table.append([md.escape(s), md.number(count), *cells])
    return md.table(["speaker", header, *(md.escape(label) for label, *_ in cols)], table)


def bar_plot(report: Report, folder: Path, name: str, title: str, ylabel: str, rows: Rows,
             value: Callable[[Any, str], float | None] = fine_tuned_or_base,
             marks: list[float | None] | None = None, mark_label: str = "") -> str | None:
    """plots/NAME.png: one group of bars per speaker, one bar per model column."""
    from doppel.eval.plots import grouped_bars

    names = speakers(report.runs, rows)
    if not names:
        return None
    grouped_bars(folder / "plots" / f"{name}.png", title, ylabel, names,
                 series(report.runs, report.cols, rows, value), marks, mark_label)
    return f"plots/{name}.png"
