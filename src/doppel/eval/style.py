"""Style fidelity: how generated replies compare with real ones on measurable habits.

Each reply (a turn: one or more messages) becomes a few numbers (lengths, punctuation, emoji,
capitals, script mix, familiar words). A speaker's distance is the mean over features of how far
the generated mean is from the real mean: for counts, |log2((generated + 1) / (real + 1))|
(1 = twice or half as long; capped at 3), for shares the absolute difference (1 = 100 points).
0 means indistinguishable on average; no data set-wide scale is needed, so runs compare directly.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

FEATURES = {
    "chars": "characters per message",
    "words": "words per message",
    "messages": "messages per turn",
    "punctuation": "punctuation marks per message",
    "emoji": "share of messages with an emoji",
    "lowercase": "share of messages without capitals",
    "non_latin": "share of letters outside the Latin script",
    "vocab": "share of words the speaker used in training",
}
# counts are compared as ratios (log2 of (generated + 1) / (real + 1)), shares as differences
COUNTS = {"chars", "words", "messages", "punctuation"}
DISTANCE_CAP = 3.0  # a count 8 times off counts no more than that

EMOJI = re.compile(
    "[\U0001f1e6-\U0001f1ff\U0001f300-\U0001f5ff\U0001f600-\U0001f64f\U0001f680-\U0001f6ff"
    "\U0001f700-\U0001f77f\U0001f900-\U0001f9ff\U0001fa70-\U0001faff\u2600-\u27bf\u2b50\u2b55]"
)
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def words(text: str) -> list[str]:
    """Lowercased words (letters, with inner apostrophes), without numbers or emoji."""
    return WORD.findall(text.lower())


def vocabulary(replies: Iterable[Sequence[str]]) -> set[str]:
    return {w for reply in replies for message in reply for w in words(message)}


def _mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return sum(found) / len(found) if found else None


def _lowercase_share(messages: Sequence[str]) -> float | None:
    cased = [m for m in messages if any(ch.isupper() or ch.islower() for ch in m)]
    return _mean(float(not any(ch.isupper() for ch in m)) for m in cased)


def _non_latin_share(text: str) -> float | None:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return None
    return sum(not unicodedata.name(ch, "").startswith("LATIN") for ch in letters) / len(letters)


def reply_features(reply: Sequence[str], vocab: set[str] | None = None) -> dict[str, float | None]:
    """The style numbers of one reply; None where a feature does not apply (say, no letters)."""
    messages = [m for m in reply if m.strip()] or [""]
    text = "".join(messages)
    tokens = [w for m in messages for w in words(m)]
    return {
        "chars": _mean(len(m) for m in messages),
        "words": _mean(len(words(m)) for m in messages),
        "messages": float(len(messages)) if messages != [""] else 0.0,
        "emoji": _mean(float(bool(EMOJI.search(m))) for m in messages),
        "lowercase": _lowercase_share(messages),
        "punctuation": _mean(_punctuation(m) for m in messages),
        "non_latin": _non_latin_share(text),
        "vocab": _mean(float(w in vocab) for w in tokens) if vocab is not None and tokens else None,
    }


def _punctuation(text: str) -> int:
    return sum(unicodedata.category(ch).startswith("P") for ch in text)


def profile(
    replies: Iterable[Sequence[str]], vocab: set[str] | None = None
) -> dict[str, float | None]:
    """Mean of each feature over replies (features that apply to none are None)."""
    return mean_profile([reply_features(r, vocab) for r in replies])


def mean_profile(rows: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    return {f: _mean(row[f] for row in rows if row[f] is not None) for f in FEATURES}


def feature_intervals(replies: Sequence[Sequence[str]], vocab: set[str] | None,
                      seed: int) -> dict[str, tuple[float, float] | None]:
    """Each feature's mean over replies with its 95% bootstrap interval over the replies."""
    from doppel.eval.bootstrap import interval

    rows = [reply_features(r, vocab) for r in replies]

    def statistic(feature: str):
        return lambda drawn: _mean(v for i in drawn if (v := rows[i][feature]) is not None)

    return {f: interval(statistic(f), len(rows), seed) for f in FEATURES}


def distance_statistic(
    generated: Sequence[Sequence[str]], real: Sequence[Sequence[str]], vocab: set[str] | None
):
    """Distance of the generated replies from the real ones at the drawn contexts (bootstrap)."""
    generated_rows = [reply_features(r, vocab) for r in generated]
    real_rows = [reply_features(r, vocab) for r in real]

    def statistic(drawn: Sequence[int]) -> float | None:
        return distance(mean_profile([generated_rows[i] for i in drawn]),
                        mean_profile([real_rows[i] for i in drawn]))[0]

    return statistic


def feature_distance(feature: str, generated: float, real: float) -> float:
    if feature in COUNTS:
        return min(abs(math.log2((generated + 1) / (real + 1))), DISTANCE_CAP)
    return abs(generated - real)


def distance(
    generated: dict[str, float | None], real: dict[str, float | None]
) -> tuple[float | None, dict[str, float]]:
    """Summary distance and per-feature distances (features missing on either side are skipped)."""
    per_feature = {
        f: feature_distance(f, generated[f], real[f])
        for f in FEATURES
        if generated.get(f) is not None and real.get(f) is not None
    }
    summary = sum(per_feature.values()) / len(per_feature) if per_feature else None
    return summary, per_feature
