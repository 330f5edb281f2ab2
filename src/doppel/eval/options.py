"""Eval settings: one dataclass whose defaults and help texts feed `doppel eval`'s flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class EvalOptions:
    """How much of the held-out data to use and how to generate; every field is a CLI flag."""

    max_contexts: int = _opt(48, "held-out contexts to reply to, balanced across speakers")
    max_new_tokens: int = _opt(64, "tokens generated per reply at most")
    batch_size: int = _opt(16, "prompts generated together")
    seed: int = _opt(0, "seed for context sampling and generation (same seed, same report)")
    top_speakers: int = _opt(3, "top friends (by messages) evaluated next to the exporting user")
    history_turns: int = _opt(12, "turns of history before each held-out reply, at most")
    temperature: float = _opt(0.7, "sampling temperature for generated replies")
    top_p: float = _opt(0.9, "nucleus sampling share")
    top_k: int = _opt(0, "sample from the k most likely tokens (0: no limit)")
    repetition_penalty: float = _opt(1.1, "penalty for repeating tokens")
    ppl_batch_tokens: int = _opt(2048, "tokens per forward pass when computing perplexity")
    baseline: str | None = _opt(None, "base model to compare with (default: each run's base model)")
    precision: str = _opt("auto", "auto (bf16 on GPUs that support it, else fp32), bf16 or fp32")
    transcripts: bool = _opt(True, "write scripted chats (hey / what's up?) for each run")
    force: bool = _opt(False, "replace the output folder if it exists")

    @classmethod
    def quick(cls, **overrides: Any) -> EvalOptions:
        """Fewer contexts and shorter replies: a minute or two on a laptop CPU."""
        values = {"max_contexts": 32, "max_new_tokens": 32, "top_speakers": 2, "history_turns": 8}
        return cls(**{**values, **overrides})

    def replace(self, **changes: Any) -> EvalOptions:
        return dataclasses.replace(self, **changes)

    @staticmethod
    def help(name: str) -> str:
        """A flag's help text with its default (and its --quick value, where that differs)."""
        spec = next(f for f in dataclasses.fields(EvalOptions) if f.name == name)
        quick = getattr(EvalOptions.quick(), name)
        extra = f"; --quick: {quick}" if quick != spec.default else ""
        return f"{spec.metadata['help']} (default: {spec.default}{extra})"
