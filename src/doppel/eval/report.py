"""The eval report: results.json (every number), report.md/.html, plots/*.png, transcripts.md.

Every part that shows a metric loops over the registry (eval/metrics/): the plain paragraph, the
summary's rows, the numbered sections, the plots, the floor-to-ceiling bars, the appendix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doppel.atomic import atomic_file
from doppel.eval import markdown as md
from doppel.eval.metrics import METRICS
from doppel.eval.plain import plain_summary
from doppel.eval.results import EvalResults, RunResult
from doppel.eval.scales import scales_section, write_scales
from doppel.eval.store import write_results
from doppel.eval.tables import Column, Report, columns, noise_lines

__all__ = ["columns", "report_markdown", "summary_rows", "write_report"]


def summary_rows(run: RunResult, report: Report) -> dict[str, tuple[str, Any]]:
    """The summary's compared rows for one run: label -> (cell, the row it comes from)."""
    found: dict[str, tuple[str, Any]] = {}
    for metric in METRICS:
        if metric.summary is not None and metric.name in run.metrics:
            found |= metric.summary(run, report.me, report)
    return found


def summary_table(report: Report) -> str:
    """Side by side: one column per run, its base next to it in each cell (fine-tuned / base),
    each with its 95% interval; then, in words, which changes are within noise."""
    runs = report.runs
    compared = [summary_rows(r, report) for r in runs]
    rows: dict[str, list[str]] = {
        "method": [str(r.method) for r in runs],
        "held-out contexts": [str(r.contexts) for r in runs],
    }
    for label in dict.fromkeys(label for found in compared for label in found):
        rows[label] = [found.get(label, ("n/a", None))[0] for found in compared]
    rows |= {
        "training wall time (s)": [md.number(r.training.get("wall_s"), 0) for r in runs],
        "trainable parameters": [md.number(r.training.get("trainable_params")) for r in runs],
        "peak memory (MB)": [md.number(r.training.get("peak_memory_mb"), 0) for r in runs],
        "eval time (s)": [md.number(sum(r.timings.values()), 1) for r in runs],
    }
    table = md.table(["", *(md.escape(r.name) for r in runs)],
                     [[label, *cells] for label, cells in rows.items()])
    named = [(run.name, {label.split(" (")[0]: row for label, (_, row) in found.items()})
             for run, found in zip(runs, compared, strict=True)]
    return table + "\n" + noise_lines(named, "the number against its base")


def timing_table(everything: EvalResults) -> str:
    runs = everything.runs
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.timings if k not in keys]
    rows = [[k, *(md.number(r.timings.get(k), 1) for r in runs)] for k in keys]
    rows += [[f"{k} (all runs)", *([md.number(v, 1)] + [""] * (len(runs) - 1))]
             for k, v in everything.timings.items()]
    return md.table(["part (seconds)", *(md.escape(r.name) for r in runs)], rows)


def intro(everything: EvalResults) -> str:
    """The dataset, the contexts, the sampling settings, what the brackets mean, notes on runs."""
    data, runs = everything.dataset, everything.runs
    opts, sampling = everything.options, everything.options.sampling
    contexts = ", ".join(f"{md.escape(r.name)}: {r.contexts}" for r in runs)
    notes = [f"- {md.escape(r.name)}: training did not finish; these are its last weights."
             for r in runs if not r.finished]
    notes += [f"- {md.escape(r.name)} was trained on a different dataset (fingerprint); its "
              "training data may include these held-out conversations." for r in runs
              if not r.dataset_matches]
    text = (
        f"Dataset `{md.escape(data.path)}`: user **{md.escape(data.me)}**, main language "
        f"`{data.main_language}`, {data.val_conversations} held-out conversations.\n"
        f"Held-out contexts for generation: {contexts} (balanced across the user and top "
        f"friends each run trained).\nSeed {sampling.seed}, temperature {sampling.temperature}, "
        f"top-p {sampling.top_p}, at most {sampling.max_new_tokens} new tokens, "
        f"{opts.history_turns} turns of history, batches of {opts.batch_size}.\n"
        f"Numbers in brackets are 95% bootstrap intervals (seed {sampling.seed}; over held-out "
        f"conversations for perplexity, over contexts otherwise).\n"
        f"The eval took {md.number(everything.timings.get('total'), 1)} s (parts at the end)."
    )
    return text + "\n\n" + "".join(f"{note}\n" for note in notes) + ("\n" if notes else "")


def sections(report: Report) -> str:
    """Each metric's section in registry order: numbered ones first, then unnumbered ones."""
    numbered, other = [], []
    for metric in METRICS:
        body = metric.section(report) if metric.section else ""
        if body:
            (numbered if metric.numbered else other).append((metric.title, body))
    parts = [f"## {n}. {title}\n\n{body}" for n, (title, body) in enumerate(numbered, 1)]
    parts += [f"## {title}\n\n{body}" for title, body in other]
    return "\n".join(parts)


def report_markdown(everything: EvalResults, plots: dict[str, str], cols: list[Column]) -> str:
    report = Report(everything, cols, plots)
    appendix = "\n".join(m.appendix(report) for m in METRICS if m.appendix)
    return f"""# doppel eval

{plain_summary(report, METRICS)}

{intro(everything)}## Summary

{summary_table(report)}
{scales_section(report, METRICS)}{sections(report)}
## Time per part

{timing_table(everything)}
{appendix}"""


def write_report(folder: Path, everything: EvalResults) -> None:
    """Write every report file into folder (a temporary folder from atomic_dir)."""
    report = Report(everything, columns(everything.runs))
    for metric in METRICS:
        made = metric.plot(report, folder) if metric.plot else None
        if made:
            report.plots[metric.name] = made
    report.plots |= write_scales(report, METRICS, folder)
    text = report_markdown(everything, report.plots, report.cols)
    write_results(folder, everything)
    for metric in METRICS:
        if metric.files:
            metric.files(report, folder)
    with atomic_file(folder / "report.md") as out:
        out.write(text)
    with atomic_file(folder / "report.html") as out:
        out.write(md.to_html(text, "doppel eval"))
