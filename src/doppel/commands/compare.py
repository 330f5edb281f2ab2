"""`doppel compare DATASET_DIR -o DIR`: the reference experiment, LoRA vs full, in one command."""

from __future__ import annotations

from doppel.demo import CompareOptions
from doppel.options import command_from_options


@command_from_options
def command(options: CompareOptions) -> None:
    """Train the same data with a LoRA and a full recipe back to back, then evaluate both."""
    from doppel.demo import run_compare

    run_compare(options.dataset_dir, options.output, quick=options.quick, force=options.force,
                recipes=options.recipes())
