"""`doppel sample-export`: write the bundled sample Telegram export, to try doppel without your own.

Usage: doppel sample-export sample/ [--seed 0] [--force]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def command(
    path: Annotated[Path, typer.Argument(
        help="Folder to create; result.json is written inside it.", show_default=False)],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace the folder if it exists.")] = (
        False),
) -> None:
    """Write a realistic fake Telegram export (Alex Morgan and five friends, two languages)."""
    from doppel.sample import write_sample_export_summary

    summary = write_sample_export_summary(path, seed, force=force)
    Console().print(f"wrote {summary.path}: {summary.chats} chats, {summary.messages:,} messages, "
                    f"{summary.people} people", highlight=False, soft_wrap=True)
