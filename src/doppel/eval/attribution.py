"""Who wrote this? A character n-gram classifier trained on real messages attributes replies.

Trained on the train split's real turns of the evaluated speakers; its recall on their real
held-out turns is the ceiling a perfect imitation could reach. Casing, emoji and punctuation are
kept (they are the style), and classes are weighted so a majority speaker is not the default guess.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doppel.eval.results import Ceiling

MIN_TURNS = 2  # a speaker needs at least this many training turns to be a class
# The ceiling must get this far from chance (1 / classes) towards 100% for attribution shares to
# mean anything: on a 6-speaker export in one plain register the classifier reached 26% (chance
# 17%; the bar is 38%) and gave base and fine-tuned the same 29%.
INFORMATIVE_FROM_CHANCE = 0.25


def reply_text(reply: Sequence[str]) -> str:
    return "\n".join(m for m in reply if m.strip())


@dataclass
class Attributor:
    pipeline: Any
    classes: list[str]

    def predict(self, replies: Sequence[Sequence[str]]) -> list[str | None]:
        """The likeliest author of each reply; None for an empty reply (it cannot be attributed)."""
        texts = [reply_text(r) for r in replies]
        found = [i for i, t in enumerate(texts) if t]
        guesses: list[str | None] = [None] * len(texts)
        if found:
            labels = self.pipeline.predict([texts[i] for i in found])
            for i, label in zip(found, labels, strict=True):
                guesses[i] = str(label)
        return guesses

    def share(self, replies: Sequence[Sequence[str]], speaker: str) -> float | None:
        """Share of replies attributed to `speaker` (None when there are no replies)."""
        if not replies:
            return None
        return sum(g == speaker for g in self.predict(replies)) / len(replies)


def train_attributor(
    turns: dict[str, list[tuple[str, ...]]], seed: int = 0, max_per_speaker: int = 4000
) -> Attributor | None:
    """Fit on each speaker's turns (at most max_per_speaker); None with fewer than 2 classes."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for speaker in sorted(turns):
        found = [t for t in (reply_text(r) for r in turns[speaker]) if t]
        if len(found) < MIN_TURNS:
            continue
        if len(found) > max_per_speaker:
            found = rng.sample(found, max_per_speaker)
        texts += found
        labels += [speaker] * len(found)
    classes = sorted(set(labels))
    if len(classes) < 2:
        return None
    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), lowercase=False, sublinear_tf=True,
                        max_features=200_000),
        LogisticRegression(max_iter=2000, class_weight="balanced", C=4.0, random_state=seed),
    )
    pipeline.fit(texts, labels)
    return Attributor(pipeline, classes)


def ceiling(attributor: Attributor, held_out: dict[str, list[tuple[str, ...]]]) -> Ceiling:
    """Accuracy on real held-out turns: overall and per speaker (recall), with the counts used."""
    from doppel.eval.results import Ceiling

    per_speaker: dict[str, float | None] = {}
    hits = total = 0
    for speaker in sorted(held_out):
        replies = [r for r in held_out[speaker] if reply_text(r)]
        if speaker not in attributor.classes or not replies:
            per_speaker[speaker] = None
            continue
        share = attributor.share(replies, speaker) or 0.0
        per_speaker[speaker] = share
        hits += round(share * len(replies))
        total += len(replies)
    return Ceiling(hits / total if total else None, per_speaker, total, attributor.classes)


def informative(found: Ceiling) -> bool:
    """Whether the classifier tells the speakers' real held-out turns apart well enough."""
    return found.accuracy is not None and len(found.classes) >= 2 and found.accuracy >= _bar(found)


def _bar(found: Ceiling) -> float:
    chance = 1 / max(len(found.classes), 1)
    return chance + INFORMATIVE_FROM_CHANCE * (1 - chance)


def not_informative_note(found: Ceiling) -> str:
    accuracy = "none" if found.accuracy is None else f"{found.accuracy:.0%}"
    return (f"the classifier recognises {accuracy} of real held-out turns (chance "
            f"{1 / max(len(found.classes), 1):.0%}; shares mean something from {_bar(found):.0%}),"
            " so the speakers' styles are too alike to tell generated replies apart.")
