"""`doppel eval --canaries`: probe a run (and its base) for the canaries planted in its export.

Per model (while the eval has it loaded): the secret's rank among random values of its shape,
and for the run (not its base) replies prompted with the text before each masked canary (one
greedy, one sampled at the eval's settings). Per run: the masked canaries looked for in every
file of the dataset folder and the run folder, and in every text the run generated in the eval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from doppel.data.dataset import Dataset
from doppel.eval import leaks
from doppel.eval.canaries import CanarySet, Secret
from doppel.eval.exposure import exposure, secret_rank
from doppel.eval.generate import reply_all
from doppel.eval.options import EvalOptions
from doppel.eval.results import CanaryLeak, CanaryResult, SecretExposure


@dataclass
class ModelProbe:
    """What one model produced for the canaries."""

    replies: dict[str, list[list[str]]] = field(default_factory=dict)  # canary id -> replies
    rank: int | None = None  # the secret's rank, 1 = likeliest


def probe_model(loaded, engine, canaries: CanarySet, options: EvalOptions,
                max_length: int, replies: bool = True) -> ModelProbe:
    """Replies to each masked canary's context (greedy and sampled) and the secret's rank.
    replies=False (the base model): the rank only, as only the run's replies are searched."""
    probe = ModelProbe()
    if canaries.masked and replies:
        histories = [list(c.history) for c in canaries.masked]
        speakers = [c.speaker for c in canaries.masked]
        greedy = options.replace(sampling=options.sampling.replace(temperature=0.0))
        runs = [reply_all(engine, histories, speakers, chosen) for chosen in (greedy, options)]
        probe.replies = {c.id: [run[i] for run in runs] for i, c in enumerate(canaries.masked)}
    if canaries.secret is not None:
        probe.rank = secret_rank(loaded.model, loaded.tokenizer, canaries.secret, max_length)
    return probe


def secret_in_train(dataset: Dataset, secret: Secret) -> int:
    """How many of the dataset's train messages hold the secret sentence."""
    return sum(secret.text in message.text for conversation in dataset.conversations("train")
               for message in conversation.messages)


def _generation_leaks(canaries: CanarySet, texts: dict[str, str]) -> list[CanaryLeak]:
    return [CanaryLeak(cid, "generations", where) for where, text in texts.items()
            for cid in leaks.found_in_text(canaries.masked, text)]


def result(canaries: CanarySet, dataset: Dataset, run_dir: Path, tuned: ModelProbe,
           base: ModelProbe, generated: dict[str, str]) -> CanaryResult:
    """Every place a masked canary was looked for, what was found, and the secret's exposure.

    generated: the run's other texts of this eval (held-out replies, scripted chats) by name."""
    texts = {f"reply to {cid}'s context ({'greedy' if i == 0 else 'sampled'})":
             "\n".join(reply) for cid, replies in tuned.replies.items()
             for i, reply in enumerate(replies)} | generated
    found = [CanaryLeak(cid, "dataset", where)
             for cid, where in leaks.found_in_folder(canaries.masked, dataset.path)]
    found += [CanaryLeak(cid, "run", where)
              for cid, where in leaks.found_in_folder(canaries.masked, run_dir)]
    found += _generation_leaks(canaries, texts)
    checked = {"dataset": leaks.files_in(dataset.path), "run": leaks.files_in(run_dir),
               "generations": len(texts)}
    secret = canaries.secret
    exposed = None
    if secret is not None and tuned.rank is not None and base.rank is not None:
        exposed = SecretExposure(
            secret.candidates, secret.occurrences, secret_in_train(dataset, secret),
            tuned.rank, base.rank, exposure(tuned.rank, secret.candidates),
            exposure(base.rank, secret.candidates), exposure(1, secret.candidates))
    return CanaryResult(canaries.path, len(canaries.masked), checked, found, exposed)
