"""`doppel memory`: build or search the memory index of a dataset folder.

Usage: doppel memory build DATASET [--embedder PATH]
       doppel memory search DATASET "query" [--with NAME] [-k 5]
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from doppel.errors import DoppelError
from doppel.memory.options import EmbedderOptions, MemoryCommand, MemorySearchOptions
from doppel.options import command_from_options


@command_from_options
def command(target: MemoryCommand, index: EmbedderOptions, search: MemorySearchOptions) -> None:
    """Build or search the memory index: what the twin can recall from your own chats."""
    from doppel.memory import build_index

    action, dataset, query = target.action, target.dataset, target.query
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
