"""`doppel demo -o DIR`: the whole product on the bundled sample, end to end."""

from __future__ import annotations

from doppel.demo import DemoOptions
from doppel.options import command_from_options


@command_from_options
def command(options: DemoOptions) -> None:
    """Sample export -> prepare -> train (cpu-demo) -> scripted chat -> eval report."""
    from doppel.demo import run_demo

    run_demo(options.output, quick=options.quick, force=options.force, model=options.model)
