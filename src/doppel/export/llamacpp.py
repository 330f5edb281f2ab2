"""Running an exported GGUF in llama.cpp itself (the optional `llama-cpp-python` package), for the
tests that prove an export answers like doppel and for bench/generate.py's llama.cpp rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from doppel.errors import DoppelError


def load(path: Path, threads: int | None = None, context: int = 2048):
    """A llama.cpp model for the file, quiet; DoppelError when llama-cpp-python is missing."""
    try:
        from llama_cpp import Llama
    except ImportError:
        raise DoppelError("llama.cpp is not installed; run `pip install 'doppel[llama]'`") from None
    return Llama(str(path), n_ctx=context, n_threads=threads, verbose=False)


def greedy(llm, prompt: Sequence[int], limit: int, stop: Sequence[int] = ()) -> Iterator[int]:
    """Greedy ids after `prompt` (given as ids, so tokenisation is not in question) until a stop."""
    llm.reset()  # no prompt-cache reuse: every call evaluates its whole prompt
    for count, token in enumerate(llm.generate(list(prompt), top_k=1, temp=0.0,
                                               repeat_penalty=1.0, reset=True)):
        if token in stop or count >= limit:
            return
        yield token


def next_logits(llm, prompt: Sequence[int]):
    """llama.cpp's logits for the token after `prompt` (numpy), the prompt evaluated afresh."""
    import llama_cpp
    import numpy as np

    llm.reset()
    llm.eval(list(prompt))
    # Llama.scores stays empty unless every position's logits are kept: read the context's own
    logits = llama_cpp.llama_get_logits(llm.ctx)
    return np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),)).copy()
