"""Style fidelity: how generated replies compare with real ones on measurable habits.

Each reply (a turn: one or more messages) becomes a few numbers (lengths, emoji, capitals,
punctuation, script mix, familiar words). A speaker's distance is the mean over features of
|generated mean - real mean| in units of that feature's spread over all real replies, capped at
3 so one habit cannot drown the rest: 0 is indistinguishable on average, 1 is one spread away.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Callable, Iterable, Sequence

FEATURES = {
    "chars": "characters per message",
    "words": "words per message",
    "messages": "messages per turn",
    "emoji": "emoji per message",
    "lowercase": "share of messages without capitals",
    "punctuation": "punctuation marks per character",
    "non_latin": "share of letters outside the Latin script",
    "vocab": "share of words the speaker used in training",
}
DISTANCE_CAP = 3.0

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
        "emoji": _mean(len(EMOJI.findall(m)) for m in messages),
        "lowercase": _lowercase_share(messages),
        "punctuation": _punctuation(text),
        "non_latin": _non_latin_share(text),
        "vocab": _mean(float(w in vocab) for w in tokens) if vocab is not None and tokens else None,
    }


def _punctuation(text: str) -> float | None:
    if not text:
        return None
    return sum(unicodedata.category(ch).startswith("P") for ch in text) / len(text)


def profile(
    replies: Iterable[Sequence[str]], vocab: set[str] | None = None
) -> dict[str, float | None]:
    """Mean of each feature over replies (features that apply to none are None)."""
    rows = [reply_features(r, vocab) for r in replies]
    return {f: _mean(row[f] for row in rows if row[f] is not None) for f in FEATURES}


def spreads(
    replies: Iterable[tuple[str, Sequence[str]]],
    vocab_of: Callable[[str], set[str] | None] | None = None,
) -> dict[str, float]:
    """Per-feature scale for distances: the spread over real (speaker, reply) pairs, floored."""
    values: dict[str, list[float]] = {f: [] for f in FEATURES}
    for speaker, reply in replies:
        row = reply_features(reply, vocab_of(speaker) if vocab_of else None)
        for feature, value in row.items():
            if value is not None:
                values[feature].append(value)
    scale = {}
    for feature, found in values.items():
        spread = statistics.pstdev(found) if len(found) > 1 else 0.0
        middle = abs(statistics.fmean(found)) if found else 0.0
        scale[feature] = max(spread, 0.1 * middle, 0.05)
    return scale


def distance(
    generated: dict[str, float | None], real: dict[str, float | None], scale: dict[str, float]
) -> tuple[float | None, dict[str, float]]:
    """Summary distance and per-feature distances (features missing on either side are skipped)."""
    per_feature = {
        f: min(abs(generated[f] - real[f]) / scale[f], DISTANCE_CAP)
        for f in FEATURES
        if generated.get(f) is not None and real.get(f) is not None
    }
    summary = sum(per_feature.values()) / len(per_feature) if per_feature else None
    return summary, per_feature

