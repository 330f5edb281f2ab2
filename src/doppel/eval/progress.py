"""Timing each part of an eval, with a rich progress bar when someone is watching."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


class Parts:
    """`with parts.part(timings, key, label, total) as advance:` times a part into timings[key]."""

    def __init__(self, show: bool) -> None:
        self.progress = None
        if show:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn())

    def __enter__(self) -> Parts:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()

    @contextlib.contextmanager
    def part(self, timings: dict[str, float], key: str, label: str,
             total: int | None = None) -> Iterator[Callable[[int], None]]:
        task = self.progress.add_task(label, total=total or 1) if self.progress else None

        def advance(steps: int = 1) -> None:
            if task is not None:
                self.progress.advance(task, steps)

        start = time.perf_counter()
        try:
            yield advance
        finally:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - start
            if task is not None:
                self.progress.update(task, completed=total or 1)
