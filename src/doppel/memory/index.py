"""The memory index: one owner-only SQLite file in the dataset folder (memory.sqlite) holding
units of masked conversation, an FTS5 table (BM25) and their dense vectors."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from doppel.memory.records import Memory, NewUnit
from doppel.memory.scope import Scope

MEMORY_FILE = "memory.sqlite"  # inside the dataset folder, owner-only


def build_index(dataset_dir: Path, embedder: str | Path | None = None,
                progress: bool = True) -> Path:
    """(Re)build DATASET/memory.sqlite from the dataset's conversations (to a temporary name,
    renamed on success); conversations already indexed by the same embedder are kept, so a
    dataset grown by a newer export indexes only what is new. Returns the index path."""
    raise NotImplementedError


def open_index(dataset_dir: Path, build_if_missing: bool = True) -> MemoryIndex:
    """The dataset's index; a dataset from before memory builds it on first use (saying so).
    A truncated or foreign file, or one made by another embedder: one-line DoppelError."""
    raise NotImplementedError


class MemoryIndex:
    """Search over one memory.sqlite: BM25 and vector ranks fused (reciprocal rank), recency,
    near-duplicates collapsed, scope applied before anything is ranked."""

    def speakers(self) -> set[str]:
        """Every participant name the index knows (to check `--with NAME`)."""
        raise NotImplementedError

    def search(self, query: str, scope: Scope, *, before: float | None = None,
               exclude_conversations: Collection[str] = (), k: int = 3,
               token_budget: int | None = None) -> list[Memory]:
        """The best `k` memories for `query` readable in `scope`, best first.

        before: only units whose `end` < before (no future); exclude_conversations: never
        these conversations; token_budget: stop adding memories once their text would pass
        it (roughly 4 characters a token)."""
        raise NotImplementedError

    def add_units(self, units: Iterable[NewUnit]) -> None:
        """Index more units (the bot's own finished conversations), committed at once."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
