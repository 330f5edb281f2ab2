"""The report's plots (matplotlib, Agg, PNG): grouped bars per speaker, and bars from a floor to
a ceiling with the base model and the run marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from doppel.eval.metric import Scale


def grouped_bars(
    path: Path, title: str, ylabel: str, speakers: Sequence[str],
    series: dict[str, Sequence[float | None]], marks: Sequence[float | None] | None = None,
    mark_label: str = "",
) -> Path:
    """One group of bars per speaker, one bar per series; optional horizontal marks per speaker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(speakers) + 4), 3.8))
    for number, (label, values) in enumerate(series.items()):
        xs = [i + (number - (len(series) - 1) / 2) * width for i in range(len(speakers))]
        bars = ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=label)
        ax.bar_label(bars, labels=[_short(v) for v in values], fontsize="x-small", padding=2)
    labelled = False
    for i, mark in enumerate(marks or []):
        if mark is not None:
            ax.hlines(mark, i - 0.45, i + 0.45, colors="black", linestyles="dashed",
                      label=None if labelled else mark_label)
            labelled = True
    ax.set_xticks(range(len(speakers)), list(speakers), rotation=15 if len(speakers) > 4 else 0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.margins(y=0.12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _short(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def scale_bars(path: Path, title: str, rows: Sequence[tuple[str, Scale]]) -> Path:
    """One horizontal bar per row from its floor to its ceiling, the base model and the run
    marked on it (a missing floor or ceiling leaves that end at the nearest marked value); a run
    on the wrong side of its floor is drawn red, joined to the floor and labelled so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0, 1.4 + 0.55 * len(rows)))
    labelled: set[str] = set()

    def once(label: str) -> str | None:
        found = None if label in labelled else label
        labelled.add(label)
        return found

    for y, (_, scale) in enumerate(rows):
        known = [v for v in (scale.floor, scale.base, scale.run, scale.ceiling) if v is not None]
        if not known:
            continue
        low = scale.floor if scale.floor is not None else min(known)
        high = scale.ceiling if scale.ceiling is not None else max(known)
        ax.barh(y, high - low, left=low, height=0.5, color="0.9", edgecolor="none")
        for x, color, label in ((scale.floor, "black", f"floor ({scale.floor_label})"),
                                (scale.ceiling, "tab:green", f"ceiling ({scale.ceiling_label})")):
            if x is not None:
                ax.vlines(x, y - 0.3, y + 0.3, colors=color, linewidth=3, label=once(label))
        if scale.worse_than_floor:  # the run outside the bar: a red stretch back to the floor
            ax.hlines(y, scale.floor, scale.run, colors="tab:red", linewidth=2, linestyles="dotted")
            ax.annotate("worse than the floor", (scale.run, y), xytext=(0, -10), va="top",
                        textcoords="offset points", ha="center", fontsize="x-small",
                        color="tab:red")
        run = ("tab:red", "run (worse than its floor)") if scale.worse_than_floor \
            else ("tab:orange", "run")
        for x, marker, color, label in ((scale.base, "o", "tab:blue", "base model"),
                                        (scale.run, "D", *run)):
            if x is not None:
                ax.plot([x], [y], marker, color=color, markersize=9, label=once(label))
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.margins(x=0.08, y=0.3)
    if rows and rows[0][1].lower_is_better:
        ax.invert_xaxis()  # better to the right, whichever way the number runs
    ax.set_xlabel("better ->")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
