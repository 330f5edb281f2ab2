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
log-probabilities are computed once per round, before its first step, so no second model is
held. Its settings are the recipe's `prefer:` block (train/config.py's PreferConfig; the recipe is
--recipe, else RUN's own recipe.yaml) with the seed, max_steps and max_length of the recipe.
Launched on several processes (torchrun, --nproc), each rank writes and trains on its share of
the pairs and the adapter's gradients are added up over the ranks before every step (data
parallel: a LoRA adapter is small, so no sharding); rank 0 alone writes the run folder. The new
run folder is RUN's tokenizer and run.json with the new adapter, the resolved recipe,
metrics.jsonl (DPO loss, reward margin and accuracy per step) and prefer.json (settings, pair
counts), written atomically.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from doppel import runs
from doppel.atomic import atomic_dir
from doppel.data.dataset import Dataset, load_dataset
from doppel.errors import DoppelError
from doppel.hardware import rank, world_size
from doppel.train import distributed
from doppel.train.config import PreferConfig, TrainConfig

PREFER_INFO = "prefer.json"
MIN_PAIRS = 8  # fewer of the user's train-split turns than this: no stage
PRINT_EVERY = 8  # optimizer steps between progress lines


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


def self_play_contexts(dataset: Dataset, settings: PreferConfig, seed: int = 0):
    """The user's train-split turns after someone else (seeded), at most settings.pairs."""
    from doppel.eval.contexts import build_contexts

    found = build_contexts(dataset, [dataset.me_name], settings.pairs, settings.history_turns,
                           seed, split="train")
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

    from doppel.hardware import has_cuda
    from doppel.models import load_model, load_tokenizer, resolve_model

    tokenizer = load_tokenizer(Path(run) / runs.TOKENIZER_DIR)
    base = load_model(resolve_model(info.base_model), tokenizer, torch.float32)
    model = PeftModel.from_pretrained(base, Path(run) / runs.ADAPTER_DIR, is_trainable=True)
    if has_cuda():  # distributed.start() picked this rank's GPU
        model.to("cuda")
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


def _add_up(trainable, stats):
    """Gradients and step numbers summed over the ranks (one collective), then the gradients
    divided by the pairs of the step: each pair weighs the same, however the ranks split them."""
    import torch

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in trainable]
    flat = torch.cat([*(g.flatten() for g in grads), stats])
    distributed.summed(flat)
    count = max(flat[-1].item(), 1.0)
    offset = 0
    for p, g in zip(trainable, grads, strict=True):
        p.grad = (flat[offset:offset + g.numel()] / count).view_as(g)
        offset += g.numel()
    return flat[-len(stats):].tolist()


def optimise(model, encoded, settings: PreferConfig, seed: int, per_epoch: int, steps: int,
             log, first_step: int = 0) -> dict[str, float]:
    """`steps` DPO steps over this rank's pairs, `per_epoch` of them a pass (every rank takes as
    many; a rank whose share ran out adds nothing); log(row) per optimizer step. Returns the
    last row."""
    import torch

    from doppel.train.dpo import dpo_loss, reply_logprob

    reference = _reference(model, encoded)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    device = trainable[0].device
    rng = random.Random(seed + rank())
    step, row = first_step, {}
    order: list[int] = []
    for taken in range(steps):
        if taken % per_epoch == 0:  # a new pass over this rank's pairs
            order = list(range(len(encoded)))
            rng.shuffle(order)
        start = taken % per_epoch * settings.grad_accum
        chunk = order[start:start + settings.grad_accum]
        loss_sum = margin_sum = right = 0.0
        for index in chunk:
            prompt, chosen, rejected = encoded[index]
            got, tokens = reply_logprob(model, prompt, chosen)
            lost, _ = reply_logprob(model, prompt, rejected)
            loss, margin = dpo_loss(got, lost, *reference[index], settings.beta)
            if settings.nll_weight:
                loss = loss - settings.nll_weight * got / tokens
            loss.backward()
            loss_sum, margin_sum = loss_sum + loss.item(), margin_sum + margin.item()
            right += margin.item() > 0
        total_loss, total_margin, total_right, count = _add_up(
            trainable, torch.tensor([loss_sum, margin_sum, right, len(chunk)], device=device))
        optimizer.step()
        optimizer.zero_grad()
        step += 1
        count = max(count, 1.0)
        row = {"step": step, "loss": total_loss / count, "reward_margin": total_margin / count,
               "reward_accuracy": total_right / count}
        log(row)
    model.eval()
    return row


def epoch_steps(pairs_per_rank: int, settings: PreferConfig) -> int:
    """Optimizer steps of one pass over the largest rank's share of the pairs."""
    return -(-pairs_per_rank // settings.grad_accum)


def _checked(dataset_dir: Path, run: Path, out: Path, config: TrainConfig, votes: Path | None,
             force: bool):
    dataset = load_dataset(Path(dataset_dir))
    info = check_run(Path(run), dataset)
    if rank() == 0 and Path(out).exists() and not force:
        raise DoppelError(f"{out} already exists; pass --force to replace it")
    if Path(out).resolve() == Path(run).resolve():
        raise DoppelError("the preference stage writes a new run folder: pass another -o")
    contexts = self_play_contexts(dataset, config.prefer, config.seed)
    voted, fooled = (vote_pairs(Path(votes), Path(run), dataset.fingerprint) if votes
                     else ([], 0))
    return info, contexts, voted, fooled


def _pairs_of_round(engine, contexts, voted, config: TrainConfig, round_: int):
    """This rank's encoded pairs: its share of the contexts, replied to by the model as it is
    now, and its share of the votes' pairs."""
    from doppel.infer.sampling import SamplingParams

    sampling = SamplingParams(seed=config.seed + round_,
                              max_new_tokens=config.prefer.max_new_tokens)
    mine = contexts[rank()::world_size()]
    replies = engine.reply_many([c.history for c in mine], [c.respondent for c in mine],
                                sampling) if mine else []
    pairs = [Pair(c.history, c.respondent, c.reply, tuple(r), "self-play")
             for c, r in zip(mine, replies, strict=True)] + voted[rank()::world_size()]
    return encode(engine, pairs, config.max_length)


def _enough(counts: list[int]) -> None:
    if sum(counts) < MIN_PAIRS:
        raise DoppelError(f"only {sum(counts)} pairs whose replies differ; the preference stage "
                          f"needs at least {MIN_PAIRS}")


def prefer(dataset_dir: Path, run: Path, out: Path, config: TrainConfig | None = None,
           votes: Path | None = None, force: bool = False, say=print) -> Path:
    """Train the preference stage on RUN's adapter into the run folder `out`; returns it. Under
    torchrun every rank calls this (distributed.start() first)."""
    import torch

    from doppel.infer.engine import Engine

    config = config or TrainConfig()
    settings = config.prefer
    distributed.start()
    info, contexts, voted, fooled = distributed.on_every_rank(
        lambda: _checked(dataset_dir, run, out, config, votes, force))
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    loaded = load_policy(Path(run), info)
    engine = Engine(loaded, max_length=config.max_length)
    rows: list[dict] = []
    last: dict = {}
    pairs_seen = 0
    budget = config.max_steps if config.max_steps > 0 else None
    for round_ in range(settings.rounds):
        loaded.model.eval()
        say(f"self-play{f' round {round_ + 1}' if settings.rounds > 1 else ''}: "
            f"{len(contexts)} replies from {run}")
        encoded = _pairs_of_round(engine, contexts, voted, config, round_)
        counts = distributed.gathered(len(encoded))
        distributed.on_every_rank(lambda: _enough(counts))  # noqa: B023 (called at once)
        per_epoch = epoch_steps(max(counts), settings)
        steps = settings.epochs * per_epoch
        if budget is not None:
            steps = min(steps, budget - len(rows))
        say(f"DPO on {sum(counts)} pairs ({len(voted)} from votes), {settings.epochs} epochs, "
            f"{steps} steps" + (f" on {len(counts)} processes" if len(counts) > 1 else ""))
        first, end = len(rows), len(rows) + steps

        def log(row: dict, round_: int = round_, end: int = end) -> None:
            rows.append({**row, "round": round_ + 1})
            if row["step"] % PRINT_EVERY == 0 or row["step"] == end:
                say(f"step {row['step']}/{end}: loss {row['loss']:.3f}, reward margin "
                    f"{row['reward_margin']:.3f}")

        last = optimise(loaded.model, encoded, settings, config.seed + round_, per_epoch, steps,
                        log, first) or last
        pairs_seen = sum(counts)
        if budget is not None and len(rows) >= budget:
            break
    summary = {"method": "dpo", "pairs": pairs_seen, "self_play_pairs": len(contexts),
               "vote_pairs": len(voted), "votes_fooled": fooled, "rounds": settings.rounds,
               "steps": len(rows), "processes": world_size(), "final": last,
               "wall_s": round(time.perf_counter() - started, 1),
               "trainable_params": sum(p.numel() for p in loaded.model.parameters()
                                       if p.requires_grad)}
    if rank() == 0:
        _write(Path(run), Path(out), loaded.model, config, rows, summary, votes, force)
    distributed.finish()
    return Path(out)


def _write(run: Path, out: Path, model, config: TrainConfig, rows: list[dict], summary: dict,
           votes: Path | None, force: bool) -> None:
    with atomic_dir(out, force=force) as tmp:
        model.save_pretrained(tmp / runs.ADAPTER_DIR)
        shutil.copytree(run / runs.TOKENIZER_DIR, tmp / runs.TOKENIZER_DIR)
        shutil.copy2(run / runs.RUN_INFO, tmp / runs.RUN_INFO)
        (tmp / "recipe.yaml").write_text(config.to_yaml(), encoding="utf-8")
        with open(tmp / runs.METRICS, "w", encoding="utf-8") as metrics:
            metrics.writelines(json.dumps(r) + "\n" for r in [*rows, {"summary": summary}])
        (tmp / PREFER_INFO).write_text(json.dumps(
            {"from": os.path.abspath(run), "votes": os.path.abspath(votes) if votes else None,
             "settings": {**config.prefer.model_dump(), "seed": config.seed,
                          "max_length": config.max_length, "max_steps": config.max_steps},
             **summary}, indent=2), encoding="utf-8")
