"""Sampling settings: declared once (default, range, help) for chat, serve, eval and the server
(whose request fields take these ranges: server.ChatRequest)."""

from __future__ import annotations

from doppel.options import Options, option


class SamplingParams(Options):
    """How the next token is picked; temperature 0 means greedy decoding."""

    temperature: float = option(0.8, "Sampling temperature; 0 = always the likeliest.", ge=0,
                               le=2)
    top_p: float = option(0.95, "Nucleus sampling: keep the smallest set this likely.", gt=0,
                          le=1)
    top_k: int = option(50, "Sample among the k likeliest tokens (0 = all).", ge=0)
    repetition_penalty: float = option(1.1, "Above 1 discourages repeating tokens.", gt=0,
                                      le=10)
    max_new_tokens: int = option(96, "Most tokens in one reply.", ge=1, le=4096)
    seed: int | None = option(None, "Seed for reproducible sampling.")
