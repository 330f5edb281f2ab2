"""One run, several processes: the process group starts before any check, so a check that must
happen once (the run folder) happens on rank 0 alone, and a user error found on any rank ends
every rank with the same one-line message and exit code 2 instead of a hang or a race.

Every collective here has a timeout (DOPPEL_DIST_TIMEOUT seconds, default 30 min): a rank that
never arrives ends the others with an error, never a hang. torchrun ends the remaining ranks
itself when one exits, so a crash on one rank cannot hang the rest either.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from doppel.errors import DoppelError, print_error
from doppel.hardware import has_cuda, rank

TIMEOUT_ENV = "DOPPEL_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800
T = TypeVar("T")
_control = None  # a gloo group for doppel's own agreement (the default group is NCCL on GPUs)


def launched() -> bool:
    """True under torchrun (or any launcher that sets the torch.distributed environment)."""
    return "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ


def timeout() -> timedelta:
    value = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        return timedelta(seconds=float(value))
    except ValueError:
        raise DoppelError(f"{TIMEOUT_ENV} must be a number of seconds, not {value!r}") from None


def start() -> None:
    """Join the process group (before accelerate, which then reuses it) with doppel's timeout."""
    global _control
    if not launched():
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if has_cuda():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if has_cuda() else "gloo", timeout=timeout())
    _control = dist.new_group(backend="gloo", timeout=timeout()) if has_cuda() else None


def finish() -> None:
    """Wait for every rank (rank 0 writes the run folder last), then leave the group: a gloo
    process that exits with its group still open can abort ("terminate called without an
    active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier(group=_control)
        dist.destroy_process_group()


def gathered(value: T) -> list[T]:
    """Every rank's `value` (picklable), in rank order; [value] in one process."""
    if not _group_started():
        return [value]
    import torch.distributed as dist

    found: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(found, value, group=_control)
    return found


def summed(tensor) -> None:
    """Add `tensor` up over the ranks, in place (on the default group: NCCL on GPUs)."""
    if _group_started():
        import torch.distributed as dist

        dist.all_reduce(tensor)


def on_every_rank(step: Callable[[], T]) -> T:
    """Run `step` on every rank; if it fails on any rank, every rank ends with its message."""
    value, error = _attempt(step)
    _agree(error, None)
    return value  # type: ignore[return-value]


def on_rank_zero(step: Callable[[], T]) -> T:
    """Run `step` on global rank 0 only (e.g. create the run folder) while the others wait; every
    rank gets rank 0's result, or ends with its error."""
    value, error = _attempt(step) if rank() == 0 else (None, None)
    return _agree(error, value)


def _attempt(step: Callable[[], T]) -> tuple[T | None, DoppelError | None]:
    try:
        return step(), None
    except DoppelError as error:
        if not _group_started():
            raise
        return None, error


def _group_started() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _agree(error: DoppelError | None, value: Any) -> Any:
    """All ranks exchange (error, value); the first error found ends every rank. Rank 0's
    value is returned. The message is printed once per node (local rank 0) before any rank
    exits, so it is the first thing on stderr whichever rank torchrun sees end first."""
    if not _group_started():
        return value
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, (str(error) if error else None, value), group=_control)
    message = next((m for m, _ in gathered if m), None)
    if message is None:
        return gathered[0][1]
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        print_error(message)
    dist.barrier(group=_control)  # nobody exits (and gets torchrun to stop the rest) before that
    _leave(DoppelError.exit_code)


def _leave(code: int) -> NoReturn:
    """End this worker now. Tearing down gloo (destroy_process_group, or the interpreter's own
    exit with the group open) can abort one rank ("terminate called without an active
    exception", SIGABRT) and torchrun then reports signals instead of doppel's exit code; nothing
    is open or half-written at an agreed error (the checks come before any write)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
