"""Who wrote this? A word and character n-gram classifier, trained on real messages, attributes
replies.

Trained on the train split's real turns of every speaker; its accuracy on their real held-out turns
is the ceiling a perfect imitation could reach. Character n-grams (within words) carry casing,
emoji, punctuation and spelling; word unigrams and bigrams carry word choice and the phrases a
person reaches for, which character n-grams miss when speakers share one register. Classes are
weighted so a majority speaker is not the default guess.

When the ceiling is near chance the classifier cannot tell even real turns apart, and a share of
generated replies attributed to someone means nothing: the rule (`informative`) asks the lower end
of the ceiling's 95% bootstrap interval to clear chance by a quarter of the way to 100%.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doppel.eval.results import Ceiling

MIN_TURNS = 2  # a speaker needs at least this many training turns to be a class
# The ceiling (the lower end of its 95% bootstrap interval, over held-out turns) must get this far
# from chance (1 / classes) towards 100% for attribution shares to mean anything: on a 6-speaker
# export in one plain register the char-only classifier reached 26% (chance 17%; the bar is 38%)
# and gave base and fine-tuned the same 29%.
INFORMATIVE_FROM_CHANCE = 0.25
FEATURES = ("word+char", "char")  # the default, and char n-grams alone (the old classifier)
# words, and each punctuation mark or emoji as a word of its own ("lol !!" -> lol, !, !)
WORD_PATTERN = r"(?u)\b\w+\b|[^\w\s]"


def reply_text(reply: Sequence[str]) -> str:
    return "\n".join(m for m in reply if m.strip())


@dataclass
class Attributor:
    pipeline: Any
    classes: list[str]
    features: str = "word+char"

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


def ngram_vectorizers() -> list[tuple[str, Any]]:
    """("words", word unigrams and bigrams), ("chars", char n-grams within words): the n-grams
    attribution reads, and the discriminator (eval/discriminator.py) beside its habits."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=WORD_PATTERN,
                            sublinear_tf=True, max_features=200_000)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), lowercase=False,
                            sublinear_tf=True, max_features=200_000)
    return [("words", words), ("chars", chars)]


def _features(kind: str):
    """The vectorizer: char n-grams alone, or word n-grams and char n-grams side by side."""
    from sklearn.pipeline import FeatureUnion

    found = ngram_vectorizers()
    return found[1][1] if kind == "char" else FeatureUnion(found)


def train_attributor(
    turns: dict[str, list[tuple[str, ...]]], seed: int = 0, max_per_speaker: int = 4000,
    features: str = "word+char",
) -> Attributor | None:
    """Fit on each speaker's turns (at most max_per_speaker); None with fewer than 2 classes."""
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
        _features(features),
        LogisticRegression(max_iter=2000, class_weight="balanced", C=4.0, random_state=seed),
    )
    pipeline.fit(texts, labels)
    return Attributor(pipeline, classes, features)


def ceiling(attributor: Attributor, held_out: dict[str, list[tuple[str, ...]]],
            seed: int = 0) -> Ceiling:
    """Accuracy on real held-out turns: overall (with its bootstrap interval over turns) and per
    speaker (recall), the counts used, and whether it is informative."""
    from doppel.eval.bootstrap import interval, mean_of
    from doppel.eval.results import Ceiling

    per_speaker: dict[str, float | None] = {}
    hits: list[float] = []
    guesses: list[tuple[str, str | None]] = []  # (who wrote it, whom the classifier named)
    for speaker in sorted(held_out):
        replies = [r for r in held_out[speaker] if reply_text(r)]
        if speaker not in attributor.classes or not replies:
            per_speaker[speaker] = None
            continue
        named = attributor.predict(replies)
        guesses += [(speaker, g) for g in named]
        found = [float(g == speaker) for g in named]
        per_speaker[speaker] = sum(found) / len(found)
        hits += found
    floor = {}
    for speaker in per_speaker:
        others = [g for writer, g in guesses if writer != speaker]
        floor[speaker] = (sum(g == speaker for g in others) / len(others)
                          if others and speaker in attributor.classes else None)
    found = Ceiling(sum(hits) / len(hits) if hits else None, per_speaker, len(hits),
                    attributor.classes, features=attributor.features,
                    interval=interval(mean_of(hits), len(hits), seed), per_speaker_floor=floor)
    found.informative = informative(found)
    return found


def chance(found: Ceiling) -> float:
    return 1 / max(len(found.classes), 1)


def informative(found: Ceiling) -> bool:
    """Whether the classifier tells the speakers' real held-out turns apart well enough: the low
    end of the ceiling's interval (the accuracy itself when there is none) reaches the bar."""
    if found.accuracy is None or len(found.classes) < 2:
        return False
    low = found.interval[0] if found.interval else found.accuracy
    return low >= _bar(found)


def _bar(found: Ceiling) -> float:
    return chance(found) + INFORMATIVE_FROM_CHANCE * (1 - chance(found))


def not_informative_note(found: Ceiling) -> str:
    accuracy = "none" if found.accuracy is None else f"{found.accuracy:.0%}"
    if found.interval:
        accuracy += f" (95% interval {found.interval[0]:.0%}-{found.interval[1]:.0%})"
    return (f"the classifier recognises {accuracy} of real held-out turns (chance "
            f"{chance(found):.0%}; shares mean something from {_bar(found):.0%}), so the speakers' "
            "styles are too alike to tell generated replies apart (the low end of the ceiling's "
            "95% interval must reach the bar).")
