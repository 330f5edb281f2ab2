"""Putting candidates in order: reciprocal-rank fusion of the lexical and the vector lists, a
nudge for recent units, near-duplicates collapsed, and the top k cut to a token budget."""

from __future__ import annotations

import re
from collections.abc import Sequence

from doppel.memory.records import Memory

RRF_K = 10  # small: with 50 candidates a list, its first few ranks should count (60 flattens them)
# lexical, vectors, the latest conversations: a rare word shared is the surer sign of a fact; the
# latest conversations weigh little (a tie-breaker, and the answer when nothing else fits: "any
# news?"): at 0.25 a recent small-talk stretch outranked a friend's secret named by the query
LIST_WEIGHTS = (1.0, 0.5, 0.05)
RECENCY_HALF_LIFE_DAYS = 90.0
RECENCY_WEIGHT = 0.1  # a unit from today scores at most 10% above the same unit long ago
DUPLICATE_JACCARD = 0.7
CHARS_PER_TOKEN = 4  # a rough count, good enough for a budget

_WORD = re.compile(r"\w+")


def fuse(rankings: Sequence[Sequence[int]],
         weights: Sequence[float] | None = None) -> dict[int, float]:
    """Reciprocal-rank fusion: each list adds weight / (RRF_K + rank) to every unit it holds
    (weights: LIST_WEIGHTS as it is when called)."""
    weights = LIST_WEIGHTS if weights is None else weights
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight <= 0:
            continue
        for rank, unit in enumerate(ranking, start=1):
            scores[unit] = scores.get(unit, 0.0) + weight / (RRF_K + rank)
    return scores


def with_recency(scores: dict[int, float], ends: dict[int, float], now: float) -> dict[int, float]:
    """Scores raised for recent units: halves of RECENCY_WEIGHT every RECENCY_HALF_LIFE_DAYS."""
    out = {}
    for unit, score in scores.items():
        age_days = max(0.0, now - ends[unit]) / 86400.0
        out[unit] = score * (1.0 + RECENCY_WEIGHT * 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS))
    return out


def memory_tokens(memory: Memory) -> int:
    """Roughly how many tokens the memory takes in a prompt (its lines and a date header)."""
    chars = 40 + sum(len(speaker) + len(text) + 3 for speaker, text in memory.lines)
    return chars // CHARS_PER_TOKEN + 1


def _words(memory: Memory) -> set[str]:
    return {w for _, text in memory.lines for w in _WORD.findall(text.lower())}


def pick(candidates: Sequence[Memory], k: int, token_budget: int | None) -> list[Memory]:
    """The best `k` of `candidates` (best first), skipping near-duplicates of a memory already
    picked (word-set Jaccard >= DUPLICATE_JACCARD) and any that would pass the token budget."""
    picked: list[Memory] = []
    seen: list[set[str]] = []
    used = 0
    for memory in candidates:
        if len(picked) == k:
            break
        words = _words(memory)
        if any(_jaccard(words, other) >= DUPLICATE_JACCARD for other in seen):
            continue
        cost = memory_tokens(memory)
        if token_budget is not None and used + cost > token_budget:
            continue
        picked.append(memory)
        seen.append(words)
        used += cost
    return picked


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return float(a == b)
    return len(a & b) / len(a | b)
