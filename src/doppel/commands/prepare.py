"""`doppel prepare`: one or more exports -> a dataset folder (conversations, manifest, report).

Usage: doppel prepare EXPORT [EXPORT ...] -o dataset/ [--groups] [--me NAME] [--gap auto]
       doppel prepare EXPORT [EXPORT ...] --list-speakers
"""

from __future__ import annotations

from pathlib import Path

from doppel.data.options import PrepareCommand, PrepareOptions
from doppel.errors import DoppelError
from doppel.options import command_from_options
from doppel.present import prepare_summary


@command_from_options
def command(target: PrepareCommand, options: PrepareOptions) -> None:
    """Turn chat exports into a dataset folder: conversations.jsonl, manifest.json, report."""
    from doppel.data.pipeline import prepare_dataset

    if target.list_speakers:
        print_speakers(target.exports, options)
        return
    if target.output is None:
        raise DoppelError("pass -o DATASET, the folder to write (or --list-speakers to only "
                          "list who wrote in the exports)")
    prepare_summary(prepare_dataset(target.exports, target.output, options,
                                    progress=not target.quiet), options.mask)


def print_speakers(exports: list[Path], options: PrepareOptions) -> None:
    """`--list-speakers`: one line per speaker, tab-separated, for people and for `cut`/`grep`."""
    from doppel.data.exports import list_speakers, open_exports

    for name, count, source in list_speakers(open_exports(exports, options)):
        print(f"{' '.join(name.split())}\t{count}\t{source}")
