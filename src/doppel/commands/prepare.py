"""`doppel prepare`: one or more exports -> a dataset folder (conversations, manifest, report).

Usage: doppel prepare EXPORT [EXPORT ...] -o dataset/ [--groups] [--me NAME] [--gap auto]
       doppel prepare EXPORT [EXPORT ...] --list-speakers
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doppel.data.options import PrepareOptions
from doppel.errors import DoppelError
from doppel.options import command_from_options
from doppel.present import prepare_summary


@command_from_options
def command(
    exports: Annotated[list[Path], typer.Argument(
        help="Exports, any mix: Telegram result.json, WhatsApp .txt/.zip, Signal .txt, Discord "
        "(DiscordChatExporter) .json, Messenger/Instagram folder or zip.", show_default=False)],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Dataset folder to write (not needed with --list-speakers).",
        show_default=False)] = None,
    options: PrepareOptions = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    list_speakers: Annotated[bool, typer.Option(
        "--list-speakers", help="Print every speaker (name, messages, source; tab-separated, "
        "most active first) and write nothing: find your own name for --me.")] = False,
) -> None:
    """Turn chat exports into a dataset folder: conversations.jsonl, manifest.json, report."""
    from doppel.data.pipeline import prepare_dataset

    if list_speakers:
        print_speakers(exports, options)
        return
    if output is None:
        raise DoppelError("pass -o DATASET, the folder to write (or --list-speakers to only "
                          "list who wrote in the exports)")
    prepare_summary(prepare_dataset(exports, output, options, progress=not quiet), options.mask)


def print_speakers(exports: list[Path], options: PrepareOptions) -> None:
    """`--list-speakers`: one line per speaker, tab-separated, for people and for `cut`/`grep`."""
    from doppel.data.exports import list_speakers, open_exports

    for name, count, source in list_speakers(open_exports(exports, options)):
        print(f"{' '.join(name.split())}\t{count}\t{source}")
