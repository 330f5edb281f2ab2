"""`doppel eval RUN_DIR [RUN_DIR ...] --data DATASET_DIR -o EVAL_DIR`: measure the likeness."""

from __future__ import annotations

import typer

from doppel.eval.options import EvalCommand, EvalOptions
from doppel.options import command_from_options


@command_from_options
def command(target: EvalCommand, options: EvalOptions) -> None:
    """Compare runs with their base models on held-out chats: perplexity, style, attribution."""
    from doppel.eval.attribution import informative
    from doppel.eval.runner import evaluate
    from doppel.present import eval_headline

    summary = evaluate(list(target.runs), target.data, target.output, options)
    for run in summary.runs:
        typer.echo(eval_headline(run, informative(summary.results.classifier)))
    typer.echo(f"report: {summary.report_html}")
