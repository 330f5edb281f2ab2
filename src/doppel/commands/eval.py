"""`doppel eval RUN_DIR [RUN_DIR ...] --data DATASET_DIR -o EVAL_DIR`: measure the likeness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doppel.eval.options import EvalOptions
from doppel.options import command_from_options


@command_from_options
def command(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR",
                                                  help="run folders from `doppel train`")],
    data: Annotated[Path, typer.Option("--data", help="dataset folder the runs were trained on")],
    output: Annotated[Path, typer.Option("-o", "--output", help="eval folder to write")],
    options: EvalOptions,
) -> None:
    """Compare runs with their base models on held-out chats: perplexity, style, attribution."""
    from doppel.eval.attribution import informative
    from doppel.eval.runner import evaluate
    from doppel.present import eval_headline

    summary = evaluate(list(runs), data, output, options)
    for run in summary.runs:
        typer.echo(eval_headline(run, informative(summary.results.classifier)))
    typer.echo(f"report: {summary.report_html}")
