"""The eval results contract: the typed records results.json holds (data only).

One set of types for both directions (eval/store.py turns them into JSON and back with pydantic's
TypeAdapter), so the runner and the report cannot disagree on a key; the shape is in
docs/architecture.md. This module imports no other part of eval but bootstrap's Intervals and the
options, so every metric and the report can import it without a circle (tests/test_layout.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from doppel.eval.bootstrap import Intervals
from doppel.eval.options import EvalOptions

T = TypeVar("T")
SCHEMA_VERSION = 2
RESULTS = "results.json"


@dataclass
class PerplexityRow:
    tokens: int  # held-out tokens the numbers rest on
    fine_tuned: float | None
    base: float | None
    intervals: Intervals | None = None  # 95% bootstrap over held-out conversations, paired


@dataclass
class Perplexity:
    speakers: dict[str, PerplexityRow]
    overall: PerplexityRow
    # the weights' precision (fp32 or bf16): perplexities compare across machines only at one
    # precision (a plain model's agree within 2%, tests/test_eval_perplexity.py; a 33-step LoRA
    # run's moved 0.5%, docs/benchmarks.md "Eval end to end")
    precision: str = "fp32"
    base_precision: str = "fp32"


@dataclass
class StyleRow:
    contexts: int
    real: dict[str, float | None]  # feature -> mean over the real replies (style.FEATURES)
    fine_tuned: dict[str, float | None]
    base: dict[str, float | None]
    distance: float | None  # fine-tuned replies from the real ones (lower is closer)
    base_distance: float | None
    per_feature: dict[str, float]
    base_per_feature: dict[str, float]
    intervals: Intervals | None = None  # of the distances; 95% bootstrap over contexts, paired
    # "real" / "fine_tuned" / "base" -> feature -> 95% interval of its mean, over contexts
    feature_intervals: dict[str, dict[str, tuple[float, float] | None]] = field(
        default_factory=dict)
    # the same distance for real messages (eval/metrics/style.py "bounds"): the speaker's other
    # held-out turns (ceiling: how close a person is to themselves) and other speakers' held-out
    # turns (floor), as many as there are contexts; None with too few turns to draw
    ceiling: float | None = None
    floor: float | None = None


@dataclass
class AttributionRow:
    contexts: int
    fine_tuned: float | None  # share of replies attributed to the intended speaker
    base: float | None
    ceiling: float | None  # the classifier's recall on the speaker's real held-out turns
    intervals: Intervals | None = None  # of the shares; 95% bootstrap over contexts, paired
    floor: float | None = None  # share of other speakers' real held-out turns given to this one


@dataclass
class Giveaway:
    """A feature that helped the discriminator pick the real reply (eval/discriminator.py): its
    name ("words__lol", "chars__ lo", "habits__chars"), whose replies hold more of it ("twin" or
    "real"), and its mean contribution per pair towards the right verdict."""

    feature: str
    more_in: str
    weight: float


@dataclass
class DiscriminatorRow:
    """The automatic blind test for one speaker (or all of them): the share of (real, generated)
    pairs where the cross-fitted discriminator picked the real reply (0.5: indistinguishable)."""

    contexts: int  # pairs judged
    fine_tuned: float | None
    base: float | None
    intervals: Intervals | None = None  # 95% bootstrap over the pairs, paired
    giveaways: list[Giveaway] = field(default_factory=list)  # what gave the run's replies away
    base_giveaways: list[Giveaway] = field(default_factory=list)


@dataclass
class Discrimination:
    """eval/metrics/discriminator.py's value for one run: per speaker, all speakers together,
    and how the pairs were split into the two halves ("conversations" or "contexts")."""

    speakers: dict[str, DiscriminatorRow] = field(default_factory=dict)
    overall: DiscriminatorRow | None = None
    halves: str | None = None
    note: str | None = None  # why there is no verdict (too few pairs)


@dataclass
class MeanRow:
    """A mean across the evaluated speakers (the summary table), with its paired intervals."""

    speakers: int  # speakers averaged
    fine_tuned: float | None
    base: float | None
    intervals: Intervals | None = None  # 95% bootstrap over all the run's contexts, paired


@dataclass
class RankingRow:
    """The ranking test of sense and persona for one speaker (eval/ranking.py)."""

    contexts: int  # contexts ranked
    candidates: int  # per context: the true reply and candidates - 1 distractors
    chance_hits: float
    chance_mrr: float
    fine_tuned_hits: float | None = None  # hits@1
    base_hits: float | None = None
    fine_tuned_mrr: float | None = None
    base_mrr: float | None = None
    intervals: Intervals | None = None  # of hits@1; 95% bootstrap over contexts, paired
    mrr_intervals: Intervals | None = None
    note: str | None = None  # why there is no number (too few held-out turns)

    @property
    def fine_tuned(self) -> float | None:
        return self.fine_tuned_hits

    @property
    def base(self) -> float | None:
        return self.base_hits


@dataclass
class CanaryLeak:
    """A masked canary found where it must not be (eval/leaks.py)."""

    canary: str  # its id in the canaries file
    place: str  # "dataset", "run" or "generations"
    where: str  # the file, relative to its folder, or which generation


@dataclass
class SecretExposure:
    """The planted secret's rank among random values of its shape (eval/exposure.py)."""

    candidates: int  # R
    planted: int  # times in the export
    in_train: int  # times in the dataset's train split
    fine_tuned_rank: int
    base_rank: int
    fine_tuned: float  # exposure in bits: log2(R + 1) - log2(rank)
    base: float
    max_exposure: float  # log2(R + 1): the secret ranked first


@dataclass
class CanaryResult:
    """`doppel eval --canaries`: masked canaries found (none, for a run that keeps its promise)
    and the secret's exposure."""

    file: str
    masked: int  # masked canaries looked for
    checked: dict[str, int]  # place -> files (dataset, run) or generations looked at
    leaks: list[CanaryLeak]
    secret: SecretExposure | None = None


@dataclass
class Ceiling:
    """The attribution classifier on real held-out turns: overall accuracy and recall per class."""

    accuracy: float | None = None
    per_speaker: dict[str, float | None] = field(default_factory=dict)
    turns: int = 0
    classes: list[str] = field(default_factory=list)
    features: str = "word+char"  # word and char n-grams, or "char" alone (eval/attribution.py)
    interval: tuple[float, float] | None = None  # of accuracy; 95% bootstrap over held-out turns
    # False: too close to chance for attribution shares to mean anything (the report then says
    # so instead of showing them; the numbers stay here). None: not decided (no classifier).
    informative: bool | None = None
    # per speaker: the share of the other speakers' real held-out turns attributed to them (the
    # floor a reply gets for sounding like anyone else)
    per_speaker_floor: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Sample:
    """A held-out context with the real reply and both models' replies, for reading."""

    respondent: str
    history: list[tuple[str, str]]
    real: list[str]
    fine_tuned: list[str]
    base: list[str]


@dataclass
class Transcript:
    """One scripted chat (eval/transcripts.py plays it)."""

    respondent: str  # whom the model plays
    partner: str  # who says the scripted lines
    language: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (speaker, message)
    trained: bool = True  # whether the run was trained to play the respondent


@dataclass
class Transcripts:
    fine_tuned: list[Transcript]
    base: list[Transcript]


class MetricView(Generic[T]):
    """`run.NAME` for a registered metric's value in `run.metrics` (read and write)."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, run, owner=None) -> T:
        if run is None:
            return self  # type: ignore[return-value]
        return run.metrics.get(self.name)  # an optional metric a run lacks reads as None

    def __set__(self, run, value: T) -> None:
        run.metrics[self.name] = value


@dataclass
class RunResult:
    """Every number for one run against its base model.

    `metrics` holds each registered metric's value by name (eval/metrics/); results.json keeps
    them as keys of the run next to the fields below, and reads each back through its row type."""

    name: str
    path: str
    method: str
    base_model: str
    baseline: str
    base_shared: bool  # the base model's numbers were measured for an earlier run
    trained_speakers: list[str]
    finished: bool
    speakers: list[str]  # whose replies were generated (the user and top friends it trained)
    dataset_matches: bool
    contexts: int
    training: dict[str, Any]  # the run's metrics.jsonl summary (wall_s, trainable_params...)
    timings: dict[str, float]
    metrics: dict[str, Any] = field(default_factory=dict)

    # the built-in metrics by name (typed views; a new metric is read as run.metrics[name])
    perplexity = MetricView[Perplexity]()
    style = MetricView[dict[str, StyleRow]]()
    attribution = MetricView[dict[str, AttributionRow]]()
    ranking = MetricView[dict[str, RankingRow]]()
    means = MetricView[dict[str, MeanRow]]()
    samples = MetricView[list[Sample]]()
    transcripts = MetricView[Transcripts]()
    canaries = MetricView[CanaryResult | None]()
    discriminator = MetricView[Discrimination]()

    # --- headline views (commands, the demo's table) ---------------------------------------
    @property
    def speaker_perplexity(self) -> dict[str, float | None]:
        return {s: row.fine_tuned for s, row in self.perplexity.speakers.items()}

    @property
    def base_speaker_perplexity(self) -> dict[str, float | None]:
        return {s: row.base for s, row in self.perplexity.speakers.items()}

    @property
    def overall_perplexity(self) -> float | None:
        return self.perplexity.overall.fine_tuned

    @property
    def base_overall_perplexity(self) -> float | None:
        return self.perplexity.overall.base

    @property
    def attribution_share(self) -> dict[str, float | None]:
        return {s: row.fine_tuned for s, row in self.attribution.items()}

    @property
    def base_attribution_share(self) -> dict[str, float | None]:
        return {s: row.base for s, row in self.attribution.items()}

    @property
    def ceiling(self) -> dict[str, float | None]:
        return {s: row.ceiling for s, row in self.attribution.items()}

    @property
    def style_distance(self) -> dict[str, float | None]:
        return {s: row.distance for s, row in self.style.items()}

    @property
    def base_style_distance(self) -> dict[str, float | None]:
        return {s: row.base_distance for s, row in self.style.items()}


@dataclass
class DatasetInfo:
    path: str
    fingerprint: str | None
    me: str
    main_language: str
    val_conversations: int


@dataclass
class EvalResults:
    """results.json: the dataset, the options, the classifier, every run, the time per part."""

    dataset: DatasetInfo
    options: EvalOptions
    classifier: Ceiling
    runs: list[RunResult]
    timings: dict[str, float]
    schema_version: int = SCHEMA_VERSION

    def __getitem__(self, name: str) -> RunResult:
        return next(run for run in self.runs if run.name == name)
