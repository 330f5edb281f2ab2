"""`doppel prepare`: one or more exports -> a dataset folder (conversations, manifest, report).

Usage: doppel prepare EXPORT [EXPORT ...] -o dataset/ [--groups] [--me NAME] [--gap auto]
       doppel prepare EXPORT [EXPORT ...] --list-speakers
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doppel.data.options import DEFAULTS, PrepareOptions, option_help
from doppel.errors import DoppelError
from doppel.present import prepare_summary


def command(
    exports: Annotated[list[Path], typer.Argument(
        help="Exports, any mix: Telegram result.json, WhatsApp .txt/.zip, Signal .txt, Discord "
        "(DiscordChatExporter) .json, Messenger/Instagram folder or zip.", show_default=False)],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Dataset folder to write (not needed with --list-speakers).",
        show_default=False)] = None,
    me: Annotated[list[str] | None, typer.Option(help=option_help("me"))] = None,
    identities: Annotated[Path | None, typer.Option(
        help=option_help("identities"), show_default=False)] = DEFAULTS.identities,
    date_order: Annotated[str, typer.Option(help=option_help("date_order"))] = (
        DEFAULTS.date_order),
    groups: Annotated[bool, typer.Option("--groups", help=option_help("groups"))] = DEFAULTS.groups,
    include: Annotated[list[str] | None, typer.Option(help=option_help("include"))] = None,
    exclude: Annotated[list[str] | None, typer.Option(help=option_help("exclude"))] = None,
    media: Annotated[str, typer.Option(help=option_help("media"))] = DEFAULTS.media,
    gap: Annotated[str, typer.Option(help=option_help("gap"))] = DEFAULTS.gap,
    val_fraction: Annotated[float, typer.Option(help=option_help("val_fraction"))] = (
        DEFAULTS.val_fraction),
    mask: Annotated[bool, typer.Option("--mask/--no-mask", help=option_help("mask"))] = (
        DEFAULTS.mask),
    mask_urls: Annotated[bool, typer.Option("--mask-urls", help=option_help("mask_urls"))] = (
        DEFAULTS.mask_urls),
    keep_single_speaker: Annotated[bool, typer.Option(
        "--keep-single-speaker", help=option_help("keep_single_speaker"))] = (
        DEFAULTS.keep_single_speaker),
    bots: Annotated[bool, typer.Option("--bots", help=option_help("bots"))] = DEFAULTS.bots,
    force: Annotated[bool, typer.Option("--force", help=option_help("force"))] = DEFAULTS.force,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    list_speakers: Annotated[bool, typer.Option(
        "--list-speakers", help="Print every speaker (name, messages, source; tab-separated, "
        "most active first) and write nothing: find your own name for --me.")] = False,
) -> None:
    """Turn chat exports into a dataset folder: conversations.jsonl, manifest.json, report."""
    from doppel.data.pipeline import prepare_dataset

    options = PrepareOptions(
        me=tuple(me or ()), identities=str(identities) if identities else None,
        date_order=date_order, groups=groups, include=tuple(include or ()),
        exclude=tuple(exclude or ()), media=media, gap=gap, val_fraction=val_fraction, mask=mask,
        mask_urls=mask_urls, keep_single_speaker=keep_single_speaker, bots=bots, force=force)
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
