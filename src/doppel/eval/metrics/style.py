"""Style fidelity: the distance of generated replies from the real ones on measurable habits."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from doppel.eval import bootstrap, style
from doppel.eval import markdown as md
from doppel.eval.metric import Metric, Said, Scale
from doppel.eval.plain import VOICE, said
from doppel.eval.results import RunResult, StyleRow
from doppel.eval.tables import (
    Report,
    bar_plot,
    noise_words,
    pair,
    section_table,
    short_model,
    with_interval,
)

COUNTED = ("contexts", "contexts")
MIN_BOUND_TURNS = 3  # fewer real turns to draw than this: no floor or ceiling
MEANING = """Distance of generated replies from the real ones at the same contexts (lower is \
closer): the mean
over features of |log2((generated + 1) / (real + 1))| for counts (1 = twice or half; capped at 3)
and |generated - real| for shares (1 = 100 points)."""


def _without(turns: Sequence[tuple[str, ...]], taken: Sequence[Sequence[str]]) -> list:
    """turns less one occurrence of each taken reply (the contexts' own replies)."""
    left = Counter(tuple(t) for t in taken)
    found = []
    for turn in turns:
        if left[tuple(turn)]:
            left[tuple(turn)] -= 1
        else:
            found.append(turn)
    return found


def bounds(speaker: str, replies: list, held_out: dict[str, list], words: set[str] | None,
           real_profile: dict, seed: int) -> tuple[float | None, float | None]:
    """(ceiling, floor): the style distance from the speaker's real replies at the contexts of
    as many real held-out turns of their own (not those replies) and of everyone else's, drawn
    with the seed; the distance a model's replies have is read between the two."""
    rng = random.Random(f"{seed}:{speaker}")
    own = [t for t in _without(held_out.get(speaker, []), replies) if "".join(t).strip()]
    others = [t for s in sorted(held_out) if s != speaker for t in held_out[s]
              if "".join(t).strip()]
    found = []
    for pool in (own, others):
        if len(pool) < MIN_BOUND_TURNS:
            found.append(None)
            continue
        drawn = rng.sample(pool, min(len(replies), len(pool)))
        found.append(style.distance(style.profile(drawn, words), real_profile)[0])
    return found[0], found[1]


def compute(m) -> dict[str, StyleRow]:
    """Per speaker: real, fine-tuned and base profiles and each model's distance from real."""
    real = m.by_speaker([list(c.reply) for c in m.job.contexts])
    tuned_by, base_by = m.by_speaker(m.tuned.replies), m.by_speaker(m.base.replies)
    vocab, seed = m.shared.vocab, m.seed
    numbers = {}
    for speaker, replies in real.items():
        words = vocab.get(speaker)
        profile = style.profile(replies, words)
        tuned_profile = style.profile(tuned_by[speaker], words)
        base_profile = style.profile(base_by[speaker], words)
        distance, per_feature = style.distance(tuned_profile, profile)
        base_distance, base_per_feature = style.distance(base_profile, profile)
        found = bootstrap.paired(style.distance_statistic(tuned_by[speaker], replies, words),
                                 style.distance_statistic(base_by[speaker], replies, words),
                                 len(replies), seed)
        spread = {key: style.feature_intervals(by, words, seed)
                  for key, by in (("real", replies), ("fine_tuned", tuned_by[speaker]),
                                  ("base", base_by[speaker]))}
        numbers[speaker] = StyleRow(len(replies), profile, tuned_profile, base_profile, distance,
                                    base_distance, per_feature, base_per_feature, found, spread,
                                    *bounds(speaker, replies, m.shared.held_out, words, profile,
                                            seed))
    return numbers


def _rows(run: RunResult) -> dict[str, StyleRow]:
    return run.style


def _value(row: StyleRow, which: str) -> float | None:
    return row.distance if which == "fine_tuned" else row.base_distance


def _feature_cell(numbers: StyleRow, key: str, feature: str) -> str:
    """A style feature's mean ("real", "base" or "fine_tuned") with its interval."""
    spread = numbers.feature_intervals.get(key, {}).get(feature)
    return with_interval(getattr(numbers, key)[feature], spread, 2)


def details(runs) -> str:
    """Per speaker: each style feature, real against every model."""
    parts = []
    for index, run in enumerate(runs):
        for speaker, numbers in run.style.items():
            header = ["feature", "real"]
            if not run.base_shared:
                header.append(f"base ({short_model(run.baseline)})")
            header.append(run.name)
            rows = []
            for feature, meaning in style.FEATURES.items():
                row = [f"{feature} ({meaning})", _feature_cell(numbers, "real", feature)]
                if not run.base_shared:
                    row.append(_feature_cell(numbers, "base", feature))
                rows.append([*row, _feature_cell(numbers, "fine_tuned", feature)])
            title = f"**{md.escape(speaker)}** ({numbers.contexts} contexts, run {index + 1})"
            parts.append(f"{title}\n\n{md.table(header, rows)}")
    return "\n".join(parts)


def section(r: Report) -> str:
    runs = r.runs
    return f"""{MEANING}

{section_table(runs, r.cols, _rows, COUNTED, _value)}
{noise_words(runs, _rows, "style distance")}{r.image("style")}
{details(runs)}"""


def plot(r: Report, folder) -> str | None:
    return bar_plot(r, folder, "style", "Style distance from real replies (lower is closer)",
                    "distance", _rows, _value)


def _distances(row: StyleRow) -> tuple[float | None, float | None]:
    return row.distance, row.base_distance


def plain(run: RunResult, me: str, r: Report) -> list[Said]:
    return said(VOICE, "style distance", run.style.get(me), True, _distances)


def summary(run: RunResult, me: str, r: Report) -> dict[str, tuple[str, object]]:
    mean = run.means.get("style")
    return {"mean style distance across speakers (fine-tuned / base; lower is closer)": (
        pair(mean), mean)}


def scales(run: RunResult, r: Report) -> dict[str, Scale]:
    return {speaker: Scale(row.floor, row.base_distance, row.distance, row.ceiling,
                           lower_is_better=True, floor_label="other speakers' real messages",
                           ceiling_label="the speaker's own other messages",
                           within_noise=Scale.noisy(row))
            for speaker, row in run.style.items()}


METRIC = Metric("style", dict[str, StyleRow], compute, title="Style fidelity", section=section,
                plot=plot, plain=plain, summary=summary, scales=scales,
                scale_title="style distance", timed=True)
