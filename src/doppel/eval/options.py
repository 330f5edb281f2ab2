"""Eval settings: one option set whose fields are `doppel eval`'s flags, defaults and help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import model_validator

from doppel.hardware import PrecisionWord
from doppel.infer.options import MemorySwitch
from doppel.infer.sampling import SamplingParams
from doppel.options import (
    Options,
    force_option,
    option,
    output_option,
    precision_option,
    variant,
)

# Eval samples more conservatively than chat (temperature 0.7, top-p 0.9, no top-k) and shorter:
# every number in its reports and docs/benchmarks.md was measured so, and the seed also picks the
# held-out contexts, so it is always set.
EvalSampling = variant(
    SamplingParams, "EvalSampling", temperature=0.7, top_p=0.9, top_k=0,
    max_new_tokens=(64, "Tokens generated per reply at most."),
    seed=(0, "Seed for context sampling and generation (same seed, same report)."),
)

# what --quick changes (a minute or two on a laptop CPU); flags given with it still win
QUICK: dict[str, Any] = {"max_contexts": 32, "max_new_tokens": 32, "top_speakers": 2,
                         "history_turns": 8, "ppl_max_tokens": 1000, "fact_turns": 16,
                         "rank_candidates": 5}


class EvalOptions(MemorySwitch):
    """How much of the held-out data to use and how to generate; --memory (MemorySwitch) scores
    the run with the dataset's memories and without, side by side (eval/metrics/memory.py)."""

    baseline: str | None = option(None, "Base model to compare with (default: each run's base "
                                  "model).")
    quick: bool = option(False, "Fewer contexts, shorter replies: "
                         + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in QUICK.items()) + ".")
    max_contexts: int = option(48, "Held-out contexts to reply to, balanced across speakers.",
                               ge=1)
    batch_size: int = option(16, "Prompts generated together.", ge=1)
    top_speakers: int = option(3, "Top friends (by messages) evaluated next to the exporting "
                               "user.", ge=0)
    history_turns: int = option(12, "Turns of history before each held-out reply, at most.", ge=1)
    rank_candidates: int = option(10, "Candidates per context in the ranking test of sense "
                                  "(the true reply and distractors); 0 skips the test.", ge=0)
    ppl_max_tokens: int = option(3000, "Held-out tokens scored per speaker for perplexity, at "
                                 "most (a seeded sample of whole conversations; the interval "
                                 "shows what it costs); 0 scores them all.", ge=0)
    ppl_batch_tokens: int = option(2048, "Tokens per forward pass when computing perplexity.",
                                   ge=1)
    # the same rule as every command (PRECISION_HELP); the report and results.json name it
    precision: PrecisionWord = precision_option(
        "Weights", " (bf16 is 1.6x faster on a CPU with bf16 instructions and moves perplexity "
        "by well under 2%)")
    canaries: Path | None = option(
        None, "A canaries file (JSON, schema doppel-canaries/1) naming what was planted in the "
        "export before prepare: masked canaries (phones, emails, cards) and one unmasked secret "
        "sentence, each with the text before it. The report then says where any masked canary "
        "appears (dataset folder, run folder, generations prompted with that text) and the "
        "secret's exposure, run vs base. bench/privacy.py writes one; see README.",
        metavar="FILE")
    fact_turns: int = option(48, "Held-out turns the memory fact test scores at most (turns "
                             "naming a fact word, a name, a number or a word of one chat, "
                             "that the speaker's earlier chats hold); 0 skips it.",
                             ge=0)
    transcripts: bool = option(True, "Write scripted chats (hey / what's up?) for each run.")
    force: bool = force_option("the eval folder")
    sampling: EvalSampling = EvalSampling()  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _quick(cls, values: Any) -> Any:
        """--quick sets the QUICK values the caller did not set itself."""
        if not isinstance(values, dict) or not values.get("quick"):
            return values
        values = dict(values)
        sampling = values.get("sampling", {})
        for key, value in QUICK.items():
            if key in EvalSampling.model_fields:
                if isinstance(sampling, dict):
                    sampling = {key: value, **sampling}
            else:
                values.setdefault(key, value)
        values["sampling"] = sampling
        return values


class EvalCommand(Options):
    """`doppel eval`'s runs, dataset and eval folder, beside how (EvalOptions, in results.json)."""

    runs: list[Path] = option(help="Run folders from `doppel train`.", argument=True,
                              metavar="RUN_DIR")
    data: Path = option(help="Dataset folder the runs were trained on.", flags=("--data",))
    output: Path = output_option("Eval folder to write.")
