"""`doppel demo -o DIR`: the whole product on the bundled sample, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command(
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for every output")] = Path(
        "out/demo"
    ),
    quick: Annotated[
        bool, typer.Option(help="a short training run and a small eval (for tests)")
    ] = False,
    force: Annotated[bool, typer.Option(help="replace the output folder")] = False,
    model: Annotated[
        str | None, typer.Option(help="model spec (default: the recipe's, smollm2-135m)")
    ] = None,
) -> None:
    """Sample export -> prepare -> train (cpu-demo) -> scripted chat -> eval report."""
    from doppel.demo import run_demo

    run_demo(output, quick=quick, force=force, model=model)
