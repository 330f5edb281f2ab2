"""Library lines doppel silences because they are about code it never uses, and read as errors.

bitsandbytes (imported by peft) tries, on CPUs with AVX-512 bf16, to fetch a 4-bit matmul kernel
from the Hugging Face Hub through `kernels`; doppel never downloads code (HF_HUB_OFFLINE=1, cli.py),
so every command printed "Skipping publisher trust check for 'kernels-community/...'" and "Failed
to load CPU gemm_4bit_forward from kernels-community ...", and bitsandbytes' built-in CPU kernels
ran as they do anyway. Only those messages are dropped (a filter on the two loggers that write
them); every other warning of those libraries still shows.
"""

from __future__ import annotations

import logging

# logger -> the starts of the messages dropped from it
NOISE = {
    "kernels._internals.hf_hub": ("Skipping publisher trust check for 'kernels-community/",),
    "bitsandbytes.backends.cpu.ops": ("Failed to load CPU gemm_4bit_forward from "
                                      "kernels-community",),
}


class DropNoise(logging.Filter):
    """Drops records whose message starts with one of `starts`."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def install() -> None:
    """Add the filters (once) before the libraries are imported."""
    for name, starts in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropNoise) for f in logger.filters):
            logger.addFilter(DropNoise(starts))
