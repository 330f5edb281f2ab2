"""What the answers say: how often judges took the twin's reply for the real one, per judge and
overall, with 95% bootstrap intervals, against chance (1 in N candidates).

Overall, the bootstrap resamples judges and then each drawn judge's answered items, so the
interval carries both sources of noise: which friends judged, and which items they happened to
get. When the interval holds chance, the judges could not tell: "indistinguishable".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from doppel.blindtest.store import Answer, BlindStore, Item
from doppel.eval import bootstrap

TWIN = "twin"
SEED = 0
MIN_ANSWERS = 10


@dataclass
class Share:
    """The share of answers that picked the twin, its interval and what it means."""

    answers: int
    share: float | None
    interval: tuple[float, float] | None
    reading: str


@dataclass
class Fooled:
    item: int
    twin_picks: int
    answers: int
    history: list[list[str]]
    real: list[str]
    twin: list[str]


@dataclass
class Results:
    persona: str
    candidates: int
    chance: float
    overall: Share
    judges: dict[str, Share]
    picks: dict[str, float]  # source -> share of all picks
    ratings: dict[str, float | None]  # source -> mean "sounds like the persona" rating, 1-5
    fooled: list[Fooled] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def reading(interval: tuple[float, float] | None, chance: float, answers: int) -> str:
    """What the interval says; with under MIN_ANSWERS answers a percentile bootstrap is too
    narrow to trust (two answers alike give [0%, 0%]), so it says nothing yet."""
    if interval is None:
        return "no answers yet"
    if answers < MIN_ANSWERS:
        return f"too few answers to tell (under {MIN_ANSWERS})"
    low, high = interval
    if low <= chance <= high:
        return "indistinguishable"
    return "taken for real more than chance" if low > chance else "judges spot the twin"


def share_of(picked: Sequence[int], chance: float, seed: int = SEED) -> Share:
    """One judge's share (0/1 per answer), its interval over their items."""
    values = list(picked)
    interval = bootstrap.interval(bootstrap.mean_of(values), len(values), seed)
    share = sum(values) / len(values) if values else None
    return Share(len(values), share, interval, reading(interval, chance, len(values)))


def pooled_share(per_judge: dict[str, list[int]], chance: float, seed: int = SEED) -> Share:
    """All answers pooled; the interval resamples judges, then each drawn judge's items."""
    import numpy as np

    groups = [values for values in per_judge.values() if values]
    rng = np.random.default_rng(seed + 1)

    def statistic(drawn: Sequence[int]) -> float | None:
        picked = 0
        total = 0
        for judge in drawn:
            values = groups[judge]
            rows = rng.integers(0, len(values), size=len(values))
            picked += sum(values[r] for r in rows)
            total += len(values)
        return picked / total if total else None

    interval = bootstrap.interval(statistic, len(groups), seed)
    flat = [v for values in groups for v in values]
    share = sum(flat) / len(flat) if flat else None
    return Share(len(flat), share, interval, reading(interval, chance, len(flat)))


def summarize(items: Sequence[Item], answers: Sequence[Answer], persona: str,
              top: int = 5) -> Results:
    """Results from a test's items and answers (answers to unknown items are left out)."""
    by_id = {item.id: item for item in items}
    answers = [a for a in answers if a.item in by_id]
    count = max((len(item.candidates) for item in items), default=2)
    chance = 1 / count
    per_judge: dict[str, list[int]] = {}
    picks: dict[str, int] = {}
    rated: dict[str, list[int]] = {}
    for answer in answers:
        sources = by_id[answer.item].sources
        per_judge.setdefault(answer.judge, []).append(int(sources[answer.pick] == TWIN))
        picks[sources[answer.pick]] = picks.get(sources[answer.pick], 0) + 1
        for source, rating in zip(sources, answer.ratings, strict=False):
            if rating is not None:
                rated.setdefault(source, []).append(rating)
    sources = sorted({s for item in items for s in item.sources})
    return Results(
        persona=persona, candidates=count, chance=chance,
        overall=pooled_share(per_judge, chance),
        judges={judge: share_of(values, chance) for judge, values in per_judge.items()},
        picks={s: picks.get(s, 0) / len(answers) if answers else 0.0 for s in sources},
        ratings={s: sum(rated[s]) / len(rated[s]) if rated.get(s) else None for s in sources},
        fooled=most_fooling(by_id, answers, top))


def most_fooling(by_id: dict[int, Item], answers: Sequence[Answer], top: int) -> list[Fooled]:
    """The items whose twin reply was picked as the real one most often (share, then count)."""
    counts: dict[int, list[int]] = {}
    for answer in answers:
        row = counts.setdefault(answer.item, [0, 0])
        row[0] += by_id[answer.item].sources[answer.pick] == TWIN
        row[1] += 1
    ranked = sorted((item for item, (fooled, _) in counts.items() if fooled),
                    key=lambda i: (-counts[i][0] / counts[i][1], -counts[i][0], i))
    found = []
    for item_id in ranked[:top]:
        item = by_id[item_id]
        real = item.candidates[item.sources.index("real")]
        twin = item.candidates[item.sources.index(TWIN)]
        found.append(Fooled(item_id, counts[item_id][0], counts[item_id][1],
                            [list(m) for m in item.history], real, twin))
    return found


def compute(store: BlindStore) -> Results:
    meta = store.meta()
    return summarize(store.items(), store.answers(), meta.get("persona", "?"))
