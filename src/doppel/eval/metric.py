"""What a metric is: one record the runner, the report, the plain paragraph and results.json loop
over (eval/metrics/ registers them; docs/architecture.md "Adding a metric").

This module imports nothing else of eval: the registry, the metrics and their consumers all import
it, and it must close no circle (tests/test_layout.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Said:
    """One thing the plain paragraph says about the user: under a heading ("replies sound more
    like you", "fit the conversation"), and, when the change is within noise, how to name it
    in the closing "within noise: ..." list."""

    heading: str
    text: str
    noise: str | None = None


@dataclass(frozen=True)
class Scale:
    """A score between its floor and its ceiling, with the base model and the run on it.

    floor: what no likeness gives (chance, other people's real messages); ceiling: the best there
    is (the person against their own other messages). Either may be None where none exists."""

    floor: float | None
    base: float | None
    run: float | None
    ceiling: float | None
    lower_is_better: bool = False
    floor_label: str = "floor"
    ceiling_label: str = "ceiling"
    within_noise: bool = False  # the run's change from base: its 95% interval holds 0
    # what the plain paragraph says of a run on the wrong side of its floor ("" : "the twin is
    # still further from you than FLOOR_LABEL are")
    floor_phrase: str = ""

    @staticmethod
    def noisy(row) -> bool:
        """Whether a row's change from base is within noise (no interval counts as noise)."""
        found = getattr(row, "intervals", None)
        return found is None or found.within_noise

    @property
    def worse_than_floor(self) -> bool:
        """Whether the run sits on the wrong side of its floor: further from the person than what
        no likeness gives (a style distance above other speakers' real messages), however much
        of the gap from the base model it closed."""
        if self.floor is None or self.run is None:
            return False
        return self.run > self.floor if self.lower_is_better else self.run < self.floor

    @property
    def gap_closed(self) -> float | None:
        """The share of the base model's distance to the ceiling the run covered (1 = reached
        it, 0 = no better than base, below 0 = worse); None without a ceiling or a gap."""
        if self.ceiling is None or self.base is None or self.run is None:
            return None
        gap = self.ceiling - self.base
        if abs(gap) < 1e-9 or (gap > 0) == self.lower_is_better:
            return None  # base already at or past the ceiling
        return (self.run - self.base) / gap


@dataclass(frozen=True)
class Metric:
    """One metric: its name (the key in results.json's runs and in `RunResult.metrics`), its row
    type (the value for one run, read back through it), how it is computed, and how the report
    shows it. Only `name`, `row` and `compute` are required.

    compute(m): the value for one run from `runner.Measured` (the job's contexts, both models'
        outputs, the shared classifier and vocabularies, the options).
    probe(p): optional work while a model is loaded (`runner.Probe`); its result reaches compute
        as `m.tuned.probes[name]` / `m.base.probes[name]`. Memory on/off or any other variant
        side by side: probe each variant here and keep both in the row.
    title + section(r): the report section (`report.Report` -> markdown: tables, words); a
        title makes it numbered ("## 3. Who wrote this?"), numbered=False leaves it unnumbered.
    plot(r, folder): draw plots/NAME.png under folder; returns its relative path or None.
    plain(run, me, r): what the first paragraph says about the user (a list of Said).
    summary(run, me, r): the summary table's rows: label -> (cell, the row whose `intervals`
        say whether the change is within noise, or None).
    scales(run, r): speaker -> Scale, drawn as bars from floor to ceiling with base and run
        marked, and used by the plain paragraph ("closes 60% of the gap ...").
    note(r): a line after the plain paragraph's runs (about the whole eval).
    appendix(r): text at the end of the report; files(r, folder): files next to it.
    default(): the value when results.json lacks it (None: the file is refused).
    timed: the compute gets its own line in the time table.
    """

    name: str
    row: Any
    compute: Callable[[Any], Any]
    probe: Callable[[Any], Any] | None = None
    title: str = ""
    section: Callable[[Any], str] | None = None
    numbered: bool = True
    plot: Callable[[Any, Path], str | None] | None = None
    plain: Callable[[Any, str, Any], list[Said]] | None = None
    summary: Callable[[Any, str, Any], dict[str, tuple[str, Any]]] | None = None
    scales: Callable[[Any, Any], dict[str, Scale]] | None = None
    scale_title: str = ""
    note: Callable[[Any], str] | None = None
    appendix: Callable[[Any], str] | None = None
    files: Callable[[Any, Path], None] | None = None
    default: Callable[[], Any] | None = None
    timed: bool = False
