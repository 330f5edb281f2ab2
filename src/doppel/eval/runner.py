"""`evaluate`: compare fine-tuned runs with their base models on held-out conversations.

Usage (library): evaluate(["runs/lora"], Path("data"), Path("eval"), EvalOptions.quick())

For each run: perplexity per trained speaker, replies generated for held-out contexts (style
and attribution), scripted chats; the same for its base model (computed once per base and
context set, so LoRA and full runs on the same data share it). Everything lands in one folder,
written atomically: report.md/html, plots/, results.json, transcripts.md.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doppel.atomic import atomic_dir
from doppel.data.dataset import Dataset, load_dataset
from doppel.errors import DoppelError
from doppel.eval import attribution, canary_probe, perplexity, ranking, style
from doppel.eval.canaries import CanarySet, read_canaries
from doppel.eval.contexts import (
    Context,
    build_contexts,
    conversation_turns,
    speaker_turns,
    top_friends,
)
from doppel.eval.generate import ranked_replies
from doppel.eval.language import main_language
from doppel.eval.metrics import METRICS
from doppel.eval.options import EvalOptions
from doppel.eval.progress import Parts
from doppel.eval.results import (
    RESULTS,
    Ceiling,
    DatasetInfo,
    EvalResults,
    RunResult,
    Transcript,
)
from doppel.eval.transcripts import plan_transcripts, run_chats
from doppel.runs import RunInfo, read_metrics, read_run_info


@dataclass
class EvalSummary:
    """Where an eval was written, and its results (the same records results.json holds)."""

    out_dir: Path
    results: EvalResults

    @property
    def runs(self) -> list[RunResult]:
        return self.results.runs

    @property
    def report_md(self) -> Path:
        return self.out_dir / "report.md"

    @property
    def report_html(self) -> Path:
        return self.out_dir / "report.html"

    @property
    def results_json(self) -> Path:
        return self.out_dir / RESULTS

    @property
    def transcripts_md(self) -> Path:
        return self.out_dir / "transcripts.md"

    def __getitem__(self, name: str) -> RunResult:
        return self.results[name]


@dataclass
class Job:
    """What to measure for one run (and, identically, for its base model)."""

    max_length: int
    ppl_speakers: list[str]
    contexts: list[Context]
    chats: list[Transcript]
    rank_items: list[ranking.RankItem] = field(default_factory=list)
    canaries: CanarySet | None = None  # --canaries
    dataset: Dataset | None = None  # what a metric's probe may read (the memory index's folder)

    def key(self) -> tuple:
        return (self.max_length, tuple(self.ppl_speakers), tuple(self.contexts),
                tuple((c.respondent, c.partner, c.language) for c in self.chats),
                tuple(self.rank_items), self.canaries)


@dataclass
class ModelResult:
    """What one model produced for a Job."""

    scored: dict[str, perplexity.Scored]
    replies: list[list[str]]
    transcripts: list[Transcript]
    timings: dict[str, float]
    precision: str = "fp32"  # the weights' precision perplexity was computed in
    ranks: list[int] = field(default_factory=list)  # the true reply's rank for each RankItem
    canaries: canary_probe.ModelProbe = field(default_factory=canary_probe.ModelProbe)
    probes: dict[str, Any] = field(default_factory=dict)  # metric name -> what its probe made


@dataclass
class Probe:
    """What a metric's probe gets while one model is loaded (Metric.probe)."""

    loaded: Any  # runs.Loaded: model, tokenizer, info
    engine: Any  # infer.engine.Engine over it
    job: Job
    options: EvalOptions
    base: bool  # the comparison model


# --- checking inputs -----------------------------------------------------------------------

def check_inputs(runs: list[Path | str], data_dir: Path) -> tuple[Dataset, list[RunInfo]]:
    """Open the dataset and run folders, refusing mismatches before any model loads."""
    if not runs:
        raise DoppelError("no run folders given; pass one or more folders made by `doppel train`")
    dataset = load_dataset(Path(data_dir))
    if next(dataset.conversations("val"), None) is None:
        raise DoppelError(
            f"dataset {data_dir} has no held-out (val) conversations; prepare it again with a "
            "validation share above 0"
        )
    if not any(m.speaker == dataset.me_name for c in dataset.conversations() for m in c.messages):
        raise DoppelError(
            f"dataset {data_dir} has no messages from you ({dataset.me_name}), so there is no "
            "voice to compare a run with; prepare it again from an export that holds your "
            "messages (check --me)"
        )
    names = set(dataset.speakers.values())
    infos = []
    for run in runs:
        info = read_run_info(Path(run))
        unknown = sorted(set(info.trained_speakers) - names)
        if unknown:
            raise DoppelError(
                f"run {run} was trained on speakers not in dataset {data_dir}: "
                f"{', '.join(unknown)}; evaluate it on the dataset it was trained on"
            )
        me = (info.me or {}).get("name")
        if me and me != dataset.me_name:
            raise DoppelError(
                f"run {run} was trained for user {me!r} but dataset {data_dir} belongs to "
                f"{dataset.me_name!r}; evaluate it on the dataset it was trained on"
            )
        infos.append(info)
    return dataset, infos


def run_names(infos: list[RunInfo]) -> list[str]:
    """Folder names, made unique with the parent folder (or a number) where they collide."""
    plain = [info.path.name for info in infos]
    names = [f"{info.path.parent.name}/{info.path.name}" if plain.count(info.path.name) > 1
             else info.path.name for info in infos]
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


# --- loading and measuring one model -------------------------------------------------------

def _load(spec: Path | str, options: EvalOptions):
    from doppel.hardware import has_cuda, torch_dtype
    from doppel.runs import load_run

    # "auto" is bf16 where the CPU or GPU has it, as in every command (1.6x on this CPU); the
    # report names the precision. How far bf16 moves perplexity: docs/benchmarks.md, "Eval end
    # to end" (+0.5% on a cpu-demo run; tests/test_eval_perplexity.py holds 2%).
    loaded = load_run(spec, merge=True, dtype=torch_dtype(options.precision))
    if has_cuda():
        loaded.model.to("cuda")
    loaded.model.eval()
    return loaded


def _free_accelerator() -> None:
    """Give the GPU memory back before the next model loads (a no-op on CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure(spec: Path | str, job: Job, turns, options: EvalOptions, parts: Parts,
            label: str, base: bool = False) -> ModelResult:
    """Load one model; perplexity, replies for the job's contexts, and its scripted chats.
    base: the comparison model (its canary probe is the secret's rank alone)."""
    from doppel.hardware import precision_word
    from doppel.infer.engine import Engine

    timings: dict[str, float] = {}
    with parts.part(timings, "load", f"{label}: loading"):
        loaded = _load(spec, options)
    precision = str(precision_word(str(loaded.model.dtype).removeprefix("torch.")))
    plan = perplexity.plan_windows(
        perplexity.ChatEncoder(loaded.tokenizer), turns, job.ppl_speakers, job.max_length,
        options.ppl_max_tokens, options.sampling.seed,
    )
    with parts.part(timings, "perplexity", f"{label}: perplexity", len(plan.windows)) as advance:
        scored = perplexity.score(loaded.model, plan, perplexity.pad_id(loaded.tokenizer),
                                  options.ppl_batch_tokens, advance)
    engine = Engine(loaded, max_length=job.max_length)
    with parts.part(timings, "generation", f"{label}: replies and ranking",
                    len(job.contexts)) as advance:
        found = ranked_replies(engine, job.contexts, job.rank_items, options, advance)
    # the ranking test's own time (the prompts it shares with the replies count as generation)
    timings["ranking"] = found.ranking_seconds
    timings["generation"] -= found.ranking_seconds
    replies = found.replies
    ranks = [ranking.rank_of_truth(s) for s in found.scores]
    with parts.part(timings, "transcripts", f"{label}: scripted chats"):
        transcripts = run_chats(engine, job.chats, options) if job.chats else []
    probe = canary_probe.ModelProbe()
    if job.canaries is not None:
        with parts.part(timings, "canaries", f"{label}: canaries"):
            probe = canary_probe.probe_model(loaded, engine, job.canaries, options,
                                             job.max_length, replies=not base)
    probes = {}
    for metric in METRICS:
        if metric.probe is not None:
            with parts.part(timings, metric.name, f"{label}: {metric.name}"):
                probes[metric.name] = metric.probe(Probe(loaded, engine, job, options, base))
    del engine, loaded
    gc.collect()
    _free_accelerator()
    return ModelResult(scored, replies, transcripts, timings, precision, ranks, probe, probes)


# --- numbers for one run -------------------------------------------------------------------

@dataclass
class Measured:
    """What every metric's compute gets for one run (Metric.compute): the job, both models'
    outputs, what every run is measured against, and where they came from."""

    job: Job
    tuned: ModelResult
    base: ModelResult
    shared: Shared
    dataset: Dataset
    info: RunInfo
    options: EvalOptions

    @property
    def seed(self) -> int:
        return self.options.sampling.seed

    def by_speaker(self, values: list) -> dict[str, list]:
        """Values (one per context: replies) grouped by the context's respondent, in order."""
        found: dict[str, list] = {}
        for context, value in zip(self.job.contexts, values, strict=True):
            found.setdefault(context.respondent, []).append(value)
        return found


def training_summary(run_dir: Path) -> dict[str, Any]:
    """wall_s, trainable_params, peak_memory_mb... from the final summary line of metrics.jsonl."""
    for row in reversed(read_metrics(run_dir)):
        if isinstance(row.get("summary"), dict):
            return row["summary"]
    return {}


# --- the whole evaluation ------------------------------------------------------------------

def make_job(dataset: Dataset, info: RunInfo, options: EvalOptions, languages: list[str]) -> Job:
    trained = set(info.trained_speakers)
    me = dataset.me_name
    friends = top_friends(dataset, sorted(trained), options.top_speakers)
    speakers = ([me] if me in trained else []) + friends
    contexts = build_contexts(dataset, speakers, options.max_contexts, options.history_turns,
                              options.sampling.seed)
    known = list(info.speakers) or sorted(trained)
    chat_friends = top_friends(dataset, known, options.top_speakers)
    chats = plan_transcripts(me, chat_friends, trained, languages) if options.transcripts else []
    items = []
    if options.rank_candidates >= 2:
        turns = [(cid, t.speaker, t.messages) for cid, found in conversation_turns(dataset, "val")
                 for t in found]
        items = ranking.build_items(contexts, turns, options.rank_candidates,
                                    options.sampling.seed)
    return Job(info.max_length, sorted(trained), contexts, chats, items, dataset=dataset)


@dataclass
class Shared:
    """What every run is measured against: classifier and ceiling, vocabularies, languages."""

    attributor: attribution.Attributor | None
    ceiling: Ceiling
    vocab: dict[str, set[str]]
    language: str
    val_turns: list
    canaries: CanarySet | None = None  # --canaries
    # every speaker's real held-out turns (the floors and ceilings of style and attribution)
    held_out: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return ["en"] if self.language == "en" else ["en", self.language]


def prepare_shared(dataset: Dataset, infos: list[RunInfo], options: EvalOptions) -> Shared:
    """Train the attribution classifier on every speaker of the dataset.

    With only the evaluated speakers as classes, a reply unlike all of them still lands on one
    (on the sample data the base model's English prose went to the user, the only English
    speaker among three); every speaker gives such a reply somewhere honest to go.
    """
    classes = set(dataset.speakers.values())
    train_turns = speaker_turns(dataset, "train", classes)
    attributor = attribution.train_attributor(train_turns, options.sampling.seed)
    held_out = speaker_turns(dataset, "val", classes)
    ceiling = Ceiling()
    if attributor:
        ceiling = attribution.ceiling(attributor, held_out, options.sampling.seed)
    texts = (m.text for c in dataset.conversations("train") for m in c.messages)
    return Shared(
        attributor, ceiling, {s: style.vocabulary(t) for s, t in train_turns.items()},
        main_language(texts), [turns for _, turns in conversation_turns(dataset, "val")],
        held_out=held_out,
    )


def evaluate_run(name: str, info: RunInfo, dataset: Dataset, shared: Shared,
                 options: EvalOptions, parts: Parts, cache: dict[tuple, ModelResult]) -> RunResult:
    """Every number for one run; its base model's results come from `cache` when already made."""
    job = make_job(dataset, info, options, shared.languages)
    job.canaries = shared.canaries
    baseline = options.baseline or info.base_model
    tuned = measure(info.path, job, shared.val_turns, options, parts, name)
    key = (baseline, *job.key())
    base_shared = key in cache
    if not base_shared:
        cache[key] = measure(baseline, job, shared.val_turns, options, parts, f"base {baseline}",
                             base=True)
    base = cache[key]
    timings = dict(tuned.timings)
    if not base_shared:
        timings |= {f"base {k}": v for k, v in base.timings.items()}
    measured = Measured(job, tuned, base, shared, dataset, info, options)
    values = {}
    for metric in METRICS:
        if metric.timed:
            with parts.part(timings, metric.name, f"{name}: {metric.name}"):
                values[metric.name] = metric.compute(measured)
        else:
            values[metric.name] = metric.compute(measured)
    return RunResult(
        name=name, path=str(info.path), method=info.method, base_model=info.base_model,
        baseline=baseline, base_shared=base_shared, trained_speakers=list(info.trained_speakers),
        finished=info.finished,
        speakers=list(dict.fromkeys(c.respondent for c in job.contexts)),
        dataset_matches=info.dataset.get("fingerprint") in (None, dataset.fingerprint),
        contexts=len(job.contexts), training=training_summary(info.path), timings=timings,
        metrics=values,
    )


def evaluate(runs: list[Path | str], data_dir: Path, out_dir: Path, options: EvalOptions,
             progress: bool = True) -> EvalSummary:
    """Evaluate runs on the dataset's held-out conversations; write the report to out_dir."""
    from doppel.eval.report import write_report

    started = time.perf_counter()
    dataset, infos = check_inputs(runs, data_dir)
    planted = read_canaries(options.canaries) if options.canaries else None
    timings: dict[str, float] = {}
    with atomic_dir(Path(out_dir), force=options.force) as tmp, Parts(progress) as parts:
        with parts.part(timings, "classifier", "training the attribution classifier"):
            shared = prepare_shared(dataset, infos, options)
            shared.canaries = planted
        cache: dict[tuple, ModelResult] = {}
        results = [evaluate_run(name, info, dataset, shared, options, parts, cache)
                   for name, info in zip(run_names(infos), infos, strict=True)]
        timings["total"] = time.perf_counter() - started
        everything = EvalResults(
            DatasetInfo(str(dataset.path), dataset.fingerprint, dataset.me_name, shared.language,
                        len(shared.val_turns)),
            options, shared.ceiling, results, timings)
        with parts.part(timings, "report", "writing the report"):
            write_report(tmp, everything)
    return EvalSummary(Path(out_dir), everything)
