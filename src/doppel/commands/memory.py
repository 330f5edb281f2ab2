"""`doppel memory`: build, search or forget in the memory index of a dataset folder.

Usage: doppel memory build DATASET [--embedder PATH]
       doppel memory search DATASET "query" [--with NAME] [-k 5]
       doppel memory forget DATASET ["query"] [--chat NAME] [--before DATE] [--yes]
       doppel memory forget DATASET --list
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from doppel.errors import DoppelError
from doppel.memory.options import (
    EmbedderOptions,
    MemoryCommand,
    MemoryForgetOptions,
    MemorySearchOptions,
)
from doppel.options import command_from_options


@command_from_options
def command(target: MemoryCommand, index: EmbedderOptions, search: MemorySearchOptions,
            forgetting: MemoryForgetOptions) -> None:
    """Build, search or forget in the memory index: what the twin can recall from your chats.
    forget shows what would go (dates and chats, never the text) until you add --yes; what it
    removes stays out of memory and training through `memory build` and `prepare --force`."""
    from doppel.memory import build_index

    action, dataset, query = target.action, target.dataset, target.query
    if action == "forget":
        forget_stretches(dataset, query, forgetting, quiet=target.quiet)
        return
    if forgetting != MemoryForgetOptions():
        raise DoppelError("--chat, --before, --yes and --list are `doppel memory forget`'s")
    if action == "build":
        if query is not None:
            raise DoppelError("`doppel memory build` takes only DATASET; did you mean search?")
        build_index(dataset, index.embedder, progress=not target.quiet)
        return
    if not query or not query.strip():
        raise DoppelError('pass what to look for: doppel memory search DATASET "query"')
    print_hits(dataset, query, index, search)


def print_hits(dataset: Path, query: str, index: EmbedderOptions,
               search: MemorySearchOptions) -> None:
    """The best hits as a table: date, chat, who was there, the lines."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from doppel.data.dataset import load_dataset
    from doppel.data.people import People
    from doppel.memory import Scope, open_index

    people = People.of_manifest(load_dataset(dataset).manifest)  # a foreign folder: one line
    scope = Scope.everything()
    if search.partner is not None:  # by the one rule: an id, the label, a unique first name...
        scope = Scope.of({people.resolve(search.partner, "--with")})
    with open_index(dataset, embedder=index.embedder) as memory:
        if not memory.readable(scope):
            raise DoppelError(f"no conversations with {search.partner} in {dataset}'s memory")
        hits = memory.search(query, scope, k=search.k)
    console = Console()
    if not hits:
        console.print(f"no memories match {query!r}")
        return
    table = Table(title=f"memories for {query!r}", show_lines=True)
    for column in ("date", "chat", "who was there", "what was said"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        day = datetime.fromtimestamp(hit.start, UTC).strftime("%Y-%m-%d")
        lines = "\n".join(f"{speaker}: {text}" for speaker, text in hit.lines)
        table.add_row(day, escape(hit.chat_name), escape(", ".join(hit.who)),
                      escape(lines))
    console.print(table)


def forget_stretches(dataset: Path, query: str | None, forgetting: MemoryForgetOptions,
                     quiet: bool) -> None:
    """Preview (or with --yes, do) a forget; or list what was forgotten."""
    from doppel.data.dataset import load_dataset
    from doppel.data.forgotten import parse_day, read_forgotten
    from doppel.memory.forget import choose, forget

    load_dataset(dataset)  # a missing or foreign folder: one line
    forgotten = read_forgotten(dataset)  # a damaged record: one line, before anything is added
    chat, before = forgetting.chat, forgetting.before
    if query is not None and not query.strip():
        raise DoppelError('pass what to forget: doppel memory forget DATASET "words"')
    if forgetting.show_list:
        if query is not None or chat is not None or before is not None or forgetting.yes:
            raise DoppelError("--list shows what was forgotten; it takes no query, --chat, "
                              "--before or --yes")
        _print_forgotten(dataset, forgotten.records)
        return
    if query is None and chat is None and before is None:
        raise DoppelError('say what to forget: doppel memory forget DATASET "words" '
                          "(or --chat NAME, --before DATE)")
    stretches = choose(dataset, query, chat, None if before is None else parse_day(before))
    if not stretches:
        print("nothing to forget: no stretch of the memory index matches")
        return
    how = "+".join(name for name, given in (("words", query), ("chat", chat),
                                            ("before", before)) if given is not None)
    _print_preview(stretches, forgetting.yes)
    if forgetting.yes:
        record = forget(dataset, stretches, how, progress=not quiet)
        print(f"forgot {len(stretches)} stretches; {record} keeps them out of memory and "
              "training (ids, dates and a hash, no text)")
    else:
        print(f"{len(stretches)} stretches would be forgotten; add --yes to forget them")


def _print_preview(stretches: list, done: bool) -> None:
    """By chat: how many stretches, first and last day; never the text."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from doppel.data.forgotten import day

    chats: dict[str, list] = {}
    for stretch in stretches:
        chats.setdefault(stretch.chat_id, []).append(stretch)
    table = Table(title="forgetting" if done else "would forget")
    for column in ("chat", "stretches", "from", "to"):
        table.add_column(column, overflow="fold")
    for chat_id, group in chats.items():
        table.add_row(escape(f"{group[0].chat_name} [{chat_id}]"), str(len(group)),
                      day(min(s.start for s in group)), day(max(s.end for s in group)))
    Console().print(table)


def _print_forgotten(dataset: Path, records: tuple) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from doppel.data.forgotten import listed

    if not records:
        print(f"nothing forgotten in {dataset}")
        return
    table = Table(title=f"forgotten in {dataset}")
    for column in ("forgotten on", "chat", "how", "stretches", "from", "to"):
        table.add_column(column, overflow="fold")
    for row in listed(records):
        table.add_row(*(escape(str(cell)) for cell in row))
    Console().print(table)
