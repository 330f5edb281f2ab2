"""`doppel train DATASET --prefer --from RUN -o RUN2`: a preference stage on a LoRA run's adapter.

Likelihood training moves the voice, not the judgment (issue 30). Here the run learns from what
gives it away: at the user's turns of the train split, chosen is what the user really wrote and
rejected is the run's own reply to the same context (self-play), and DPO (train/dpo.py) moves
the adapter towards the first and away from the second, measured against the run it starts from.
With `--votes RUN.blindtest.sqlite`, the friends' blind test joins: a twin reply a friend
spotted (they picked the real one) is one more rejected reply beside the real one; one that fooled
them is not pushed down. Those items come from held-out conversations, so an eval of RUN2 on the
same dataset is no longer blind to them (prefer.json says how many).

A plain loop on the adapter's weights (LoRA on CPU in minutes for the demo model); the reference
log-probabilities are computed once, before the first step, so no second model is held. The new
run folder is RUN's tokenizer, run.json and recipe with the new adapter, metrics.jsonl (DPO loss,
reward margin and accuracy per step) and prefer.json (settings, pair counts), written atomically.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from doppel import runs
from doppel.atomic import atomic_dir
from doppel.data.dataset import Dataset, load_dataset
from doppel.errors import DoppelError

PREFER_INFO = "prefer.json"
MIN_PAIRS = 8  # fewer of the user's train-split turns than this: no stage
PRINT_EVERY = 8  # optimizer steps between progress lines


@dataclass
class PreferSettings:
    """The stage's settings (a first choice, not yet measured: docs/architecture.md)."""

    pairs: int = 64  # self-play pairs at most (the user's train-split turns after someone else)
    beta: float = 0.1  # DPO's temperature: how far from the starting run a margin may pull
    learning_rate: float = 5e-5
    epochs: int = 2
    grad_accum: int = 4  # pairs per optimizer step
    nll_weight: float = 0.0  # RPO: the chosen reply's mean NLL added to the loss
    history_turns: int = 12
    max_new_tokens: int = 64  # the run's self-play replies (ranking.CANDIDATE_TOKENS are scored)
    seed: int = 0


@dataclass(frozen=True)
class Pair:
    history: tuple[tuple[str, str], ...]
    respondent: str
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]
    source: str  # "self-play" or "votes"


def check_run(run: Path, dataset: Dataset) -> runs.RunInfo:
    """The run's info, refusing a run without an adapter or trained on other data."""
    info = runs.read_run_info(run)
    if not (Path(run) / runs.ADAPTER_DIR).is_dir():
        raise DoppelError(f"run {run} has no LoRA adapter (method {info.method}); the preference "
                          "stage trains a LoRA or QLoRA run's adapter")
    fingerprint = (info.dataset or {}).get("fingerprint")
    if fingerprint not in (None, dataset.fingerprint):
        raise DoppelError(f"run {run} was trained on other data than {dataset.path} "
                          "(fingerprints differ); pass the dataset folder the run was trained on")
    if dataset.me_name not in info.trained_speakers:
        raise DoppelError(f"run {run} was not trained to play you ({dataset.me_name}); the "
                          "preference stage needs a run that plays you")
    return info


def self_play_contexts(dataset: Dataset, settings: PreferSettings):
    """The user's train-split turns after someone else (seeded), at most settings.pairs."""
    from doppel.eval.contexts import build_contexts

    found = build_contexts(dataset, [dataset.me_name], settings.pairs, settings.history_turns,
                           settings.seed, split="train")
    if len(found) < MIN_PAIRS:
        raise DoppelError(f"dataset {dataset.path} has {len(found)} turns of yours after someone "
                          f"else in its train split; the preference stage needs at least "
                          f"{MIN_PAIRS} pairs")
    return found


def vote_pairs(votes: Path, run: Path, fingerprint: str | None = None
               ) -> tuple[list[Pair], int]:
    """(pairs from the answers that spotted the twin, answers the twin fooled), refusing a votes
    file from another run or another dataset (its fingerprint)."""
    from doppel.blindtest.prepare import REAL, TWIN
    from doppel.blindtest.store import BlindStore

    if not Path(votes).is_file():
        raise DoppelError(f"no votes file at {votes}; `doppel blindtest RUN --results` names it")
    with BlindStore(Path(votes), create=False) as store:
        meta = store.meta()
        if meta.get("run") != os.path.abspath(run):
            raise DoppelError(f"votes file {votes} is the blind test of run {meta.get('run')}, "
                              f"not of {os.path.abspath(run)}; pass that run's votes")
        if meta.get("dataset_fingerprint") not in (None, fingerprint):
            raise DoppelError(f"votes file {votes} was made on another dataset (fingerprints "
                              "differ); pass the votes of this run on this dataset")
        items = {item.id: item for item in store.items()}
        pairs: dict[int, Pair] = {}
        fooled = 0
        for answer in store.answers():
            item = items.get(answer.item)
            if item is None or REAL not in item.sources or TWIN not in item.sources:
                continue
            picked = item.sources[answer.pick]
            if picked == TWIN:
                fooled += 1
            elif picked == REAL and item.id not in pairs:
                pairs[item.id] = Pair(
                    tuple((s, t) for s, t in item.history), meta["persona"],
                    tuple(item.candidates[item.sources.index(REAL)]),
                    tuple(item.candidates[item.sources.index(TWIN)]), "votes")
    return list(pairs.values()), fooled


def load_policy(run: Path, info: runs.RunInfo):
    """The run's base model (fp32) with its adapter, trainable."""
    import torch
    from peft import PeftModel

    from doppel.models import load_model, load_tokenizer, resolve_model

    tokenizer = load_tokenizer(Path(run) / runs.TOKENIZER_DIR)
    base = load_model(resolve_model(info.base_model), tokenizer, torch.float32)
    model = PeftModel.from_pretrained(base, Path(run) / runs.ADAPTER_DIR, is_trainable=True)
    return runs.Loaded(model, tokenizer, info)


def encode(engine, pairs: Sequence[Pair], max_length: int) -> list[tuple[list[int], ...]]:
    """(prompt, chosen, rejected) ids per pair, as the ranking test scores a reply after its
    prompt; pairs whose two replies read the same ids are left out (nothing to prefer)."""
    from doppel.eval.ranking import CANDIDATE_TOKENS, candidate_ids

    found = []
    for pair in pairs:
        prompt = engine.prompt_ids(pair.history, pair.respondent, CANDIDATE_TOKENS)
        chosen, rejected = (candidate_ids(engine.encoder, pair.respondent, reply, max_length)
                            for reply in (pair.chosen, pair.rejected))
        if chosen != rejected:
            found.append((prompt, chosen, rejected))
    return found


def _reference(model, encoded) -> list[tuple[float, float]]:
    import torch

    from doppel.train.dpo import reply_logprob

    with torch.no_grad():
        return [(reply_logprob(model, p, c)[0].item(), reply_logprob(model, p, r)[0].item())
                for p, c, r in encoded]


def optimise(model, encoded, settings: PreferSettings, log) -> dict[str, float]:
    """DPO steps over the pairs; log(row) per optimizer step. Returns the last step's numbers."""
    import torch

    from doppel.train.dpo import dpo_loss, reply_logprob

    reference = _reference(model, encoded)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    rng = random.Random(settings.seed)
    step, row = 0, {}
    for _ in range(settings.epochs):
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for start in range(0, len(order), settings.grad_accum):
            chunk = order[start:start + settings.grad_accum]
            losses, margins = [], []
            for index in chunk:
                prompt, chosen, rejected = encoded[index]
                got, tokens = reply_logprob(model, prompt, chosen)
                lost, _ = reply_logprob(model, prompt, rejected)
                loss, margin = dpo_loss(got, lost, *reference[index], settings.beta)
                if settings.nll_weight:
                    loss = loss - settings.nll_weight * got / tokens
                (loss / len(chunk)).backward()
                losses.append(loss.item())
                margins.append(margin.item())
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            row = {"step": step, "loss": sum(losses) / len(losses),
                   "reward_margin": sum(margins) / len(margins),
                   "reward_accuracy": sum(m > 0 for m in margins) / len(margins)}
            log(row)
    model.eval()
    return row


def prefer(dataset_dir: Path, run: Path, out: Path, settings: PreferSettings | None = None,
           votes: Path | None = None, force: bool = False, say=print) -> Path:
    """Train the preference stage on RUN's adapter into the run folder `out`; returns it."""
    import torch

    from doppel.infer.engine import Engine
    from doppel.infer.sampling import SamplingParams

    settings = settings or PreferSettings()
    dataset = load_dataset(Path(dataset_dir))
    info = check_run(Path(run), dataset)
    if Path(out).exists() and not force:
        raise DoppelError(f"{out} already exists; pass --force to replace it")
    if Path(out).resolve() == Path(run).resolve():
        raise DoppelError("the preference stage writes a new run folder: pass another -o")
    contexts = self_play_contexts(dataset, settings)
    voted, fooled = (vote_pairs(Path(votes), Path(run), dataset.fingerprint) if votes
                     else ([], 0))
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    loaded = load_policy(Path(run), info)
    engine = Engine(loaded, max_length=info.max_length)
    loaded.model.eval()
    say(f"self-play: {len(contexts)} replies from {run}")
    sampling = SamplingParams(seed=settings.seed, max_new_tokens=settings.max_new_tokens)
    replies = engine.reply_many([c.history for c in contexts], [c.respondent for c in contexts],
                                sampling)
    pairs = [Pair(c.history, c.respondent, c.reply, tuple(r), "self-play")
             for c, r in zip(contexts, replies, strict=True)] + voted
    encoded = encode(engine, pairs, info.max_length)
    if len(encoded) < MIN_PAIRS:
        raise DoppelError(f"only {len(encoded)} pairs whose replies differ; the preference stage "
                          f"needs at least {MIN_PAIRS}")
    rows: list[dict] = []
    steps = settings.epochs * -(-len(encoded) // settings.grad_accum)
    say(f"DPO on {len(encoded)} pairs ({len(voted)} from votes), {settings.epochs} epochs, "
        f"{steps} steps")

    def log(row: dict) -> None:
        rows.append(row)
        if row["step"] % PRINT_EVERY == 0 or row["step"] == steps:
            say(f"step {row['step']}/{steps}: loss {row['loss']:.3f}, reward margin "
                f"{row['reward_margin']:.3f}")

    last = optimise(loaded.model, encoded, settings, log)
    summary = {"method": "dpo", "pairs": len(encoded), "self_play_pairs": len(contexts),
               "vote_pairs": len(voted), "votes_fooled": fooled, "final": last,
               "wall_s": round(time.perf_counter() - started, 1),
               "trainable_params": sum(p.numel() for p in loaded.model.parameters()
                                       if p.requires_grad)}
    with atomic_dir(Path(out), force=force) as tmp:
        loaded.model.save_pretrained(tmp / runs.ADAPTER_DIR)
        shutil.copytree(Path(run) / runs.TOKENIZER_DIR, tmp / runs.TOKENIZER_DIR)
        for name in ("recipe.yaml", runs.RUN_INFO):
            if (Path(run) / name).is_file():
                shutil.copy2(Path(run) / name, tmp / name)
        with open(tmp / runs.METRICS, "w", encoding="utf-8") as metrics:
            metrics.writelines(json.dumps(r) + "\n" for r in [*rows, {"summary": summary}])
        (tmp / PREFER_INFO).write_text(json.dumps(
            {"from": os.path.abspath(run), "votes": os.path.abspath(votes) if votes else None,
             "settings": asdict(settings), **summary}, indent=2), encoding="utf-8")
    return Path(out)
