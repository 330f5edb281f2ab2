"""Options shared by `doppel chat` and `doppel serve`: one definition, one help text."""

from __future__ import annotations

from typing import Annotated

import typer

from doppel.infer.engine import SamplingParams

_DEFAULT = SamplingParams()

RunDir = Annotated[str, typer.Argument(
    help="A run folder from `doppel train`, or a base model (e.g. smollm2-135m) to compare with.")]
Temperature = Annotated[float, typer.Option(help="Sampling temperature; 0 = always the likeliest.")]
TopP = Annotated[float, typer.Option(help="Nucleus sampling: keep the smallest set this likely.")]
TopK = Annotated[int, typer.Option(help="Sample among the k likeliest tokens (0 = all).")]
RepetitionPenalty = Annotated[float, typer.Option(help="Above 1 discourages repeating tokens.")]
MaxNewTokens = Annotated[int, typer.Option(help="Most tokens in one reply.")]
Seed = Annotated[int | None, typer.Option(help="Seed for reproducible sampling.")]
Merge = Annotated[bool, typer.Option(
    help="Merge a LoRA adapter into the base weights at load (faster generation).")]
MaxLength = Annotated[int | None, typer.Option(
    help="Context window in tokens (default: the run's max_length); older messages drop off.")]
Dtype = Annotated[str, typer.Option(
    help="Weights in float32, bfloat16, or auto (bfloat16 where the CPU or GPU has it).")]


def sampling(temperature: float, top_p: float, top_k: int, repetition_penalty: float,
             max_new_tokens: int, seed: int | None) -> SamplingParams:
    return SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k,
                          repetition_penalty=repetition_penalty, max_new_tokens=max_new_tokens,
                          seed=seed)


def load_engine(spec: str, merge: bool, max_length: int | None, dtype: str):
    """Load without progress bars or library chatter (errors still surface as DoppelError)."""
    from transformers.utils import logging

    from doppel.infer.engine import Engine, resolve_dtype

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    return Engine.load(spec, merge=merge, dtype=resolve_dtype(dtype), max_length=max_length)

