"""Write outputs under a temporary name, then rename: a crash never leaves half a file."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from doppel.errors import DoppelError


@contextlib.contextmanager
def atomic_dir(target: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces `target` only if the block succeeds."""
    target = Path(target)
    if target.exists() and not force:
        raise DoppelError(f"{target} already exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


@contextlib.contextmanager
def atomic_file(target: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """Open a temporary sibling of `target` for writing; rename it over `target` on success."""
    with (atomic_path(Path(target), force=True) as tmp,
          open(tmp, mode, encoding=None if "b" in mode else encoding) as handle):
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(target: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path for a writer that wants a file name (not a handle); it
    replaces `target` only if the block succeeds."""
    target = Path(target)
    if target.exists() and not force:
        raise DoppelError(f"{target} already exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    try:
        yield Path(name)
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Everything created in the block is readable by its owner alone (folders 0700, files 0600):
    chat data is private. Sets the process umask for the block, so keep the block single-threaded
    and short of other work."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)
