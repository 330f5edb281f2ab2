"""`doppel sample-export`: write the bundled sample Telegram export, to try doppel without your own.

Usage: doppel sample-export sample/ [--seed 0] [--force]
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from doppel.options import Options, command_from_options, force_option, option


class SampleExportOptions(Options):
    path: Path = option(help="Folder to create; result.json is written inside it.",
                        argument=True, metavar="PATH")
    seed: int = option(0, "Random seed; same seed, same bytes.")
    force: bool = force_option("the folder")


@command_from_options
def command(options: SampleExportOptions) -> None:
    """Write a realistic fake Telegram export (Alex Morgan and five friends, two languages)."""
    from doppel.sample import write_sample_export_summary

    summary = write_sample_export_summary(options.path, options.seed, force=options.force)
    Console().print(f"wrote {summary.path}: {summary.chats} chats, {summary.messages:,} messages, "
                    f"{summary.people} people", highlight=False, soft_wrap=True)
