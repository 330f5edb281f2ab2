"""`doppel compare DATASET_DIR -o DIR`: the reference experiment, LoRA vs full, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command(
    dataset_dir: Annotated[Path, typer.Argument(help="dataset folder from `doppel prepare`")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="folder for both runs and the report")
    ],
    lora_recipe: Annotated[
        str, typer.Option(help="recipe for the LoRA run (GPU: mistral-7b-qlora-24gb)")
    ] = "cpu-demo",
    full_recipe: Annotated[
        str, typer.Option(help="recipe for the full run (GPUs: mistral-7b-full-fsdp)")
    ] = "cpu-full",
    model: Annotated[
        str | None, typer.Option(help="model spec for both runs (default: the recipes')")
    ] = None,
    quick: Annotated[bool, typer.Option(help="short runs and a small eval (for tests)")] = False,
    force: Annotated[bool, typer.Option(help="replace the output folder")] = False,
) -> None:
    """Train the same data with a LoRA and a full recipe back to back, then evaluate both."""
    from doppel.demo import run_compare

    overrides = {"model": model}
    run_compare(
        dataset_dir,
        output,
        quick=quick,
        force=force,
        recipes={"lora": (lora_recipe, overrides), "full": (full_recipe, overrides)},
    )
