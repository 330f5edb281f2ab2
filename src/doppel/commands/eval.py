"""`doppel eval RUN_DIR [RUN_DIR ...] --data DATASET_DIR -o EVAL_DIR`: measure the likeness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doppel.eval.options import EvalOptions

_help = EvalOptions.help


def command(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR",
                                                  help="run folders from `doppel train`")],
    data: Annotated[Path, typer.Option("--data", help="dataset folder the runs were trained on")],
    output: Annotated[Path, typer.Option("-o", "--output", help="eval folder to write")],
    baseline: Annotated[str | None, typer.Option(help=_help("baseline"))] = None,
    quick: Annotated[bool, typer.Option(help="fewer contexts, shorter replies")] = False,
    max_contexts: Annotated[int | None, typer.Option(help=_help("max_contexts"))] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help=_help("max_new_tokens"))] = None,
    batch_size: Annotated[int | None, typer.Option(help=_help("batch_size"))] = None,
    seed: Annotated[int | None, typer.Option(help=_help("seed"))] = None,
    top_speakers: Annotated[int | None, typer.Option(help=_help("top_speakers"))] = None,
    history_turns: Annotated[int | None, typer.Option(help=_help("history_turns"))] = None,
    temperature: Annotated[float | None, typer.Option(help=_help("temperature"))] = None,
    precision: Annotated[str | None, typer.Option(help=_help("precision"))] = None,
    transcripts: Annotated[bool | None, typer.Option(help=_help("transcripts"))] = None,
    force: Annotated[bool, typer.Option(help=_help("force"))] = False,
) -> None:
    """Compare runs with their base models on held-out chats: perplexity, style, attribution."""
    from doppel.eval.runner import evaluate

    given = {k: v for k, v in locals().items()
             if k in EvalOptions.__dataclass_fields__ and v is not None}
    options = EvalOptions.quick(**given) if quick else EvalOptions(**given)
    summary = evaluate(list(runs), data, output, options)
    for run in summary.runs:
        me = next(iter(run.speakers), None)
        typer.echo(
            f"{run.name}: perplexity {_num(run.overall_perplexity)} (base "
            f"{_num(run.base_overall_perplexity)}); replies attributed to {me}: "
            f"{_num(run.attribution_share.get(me))} (base "
            f"{_num(run.base_attribution_share.get(me))}, ceiling {_num(run.ceiling.get(me))})"
        )
    typer.echo(f"report: {summary.report_html}")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
