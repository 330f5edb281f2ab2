"""Which one is real? A discriminator that tells the twin's reply from the real one at the same
held-out context: an automatic blind test, the judge a friend would be.

Each reply becomes word and character n-grams (attribution's, eval/attribution.py) beside its
habits (eval/style.py's numbers: length, messages per turn or bursts, emoji, punctuation, capitals,
script), and a logistic regression learns real (1) against the twin's (0). A pair is judged by
which of its two replies scores higher, so a tie (the same text twice) is a coin flip (0.5).

Cross-fitted: the contexts are split in two halves by conversation (a conversation's replies share
its topic words, which would otherwise let the judge learn the topic), a discriminator is trained
on one half and judges the other, then the halves swap; every pair is judged by a model that never
saw it. 50% is indistinguishable; the share of pairs judged right is the number.

Every judged pair also says why: each feature's contribution to the verdict is its weight times
the difference between the real and the twin's reply, so the features whose contributions summed
highest over the pairs are what gave the twin away, and the sign of the difference says whose
replies hold more of it.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from doppel.eval.attribution import ngram_vectorizers, reply_text
from doppel.eval.results import Giveaway
from doppel.eval.style import COUNTS, FEATURES, reply_features

# style's numbers but the share of known words (which needs the speaker's vocabulary)
HABITS = [f for f in FEATURES if f != "vocab"]
MIN_PAIRS = 8  # fewer pairs than this: no verdict (each half trains on at least 4 pairs)
MIN_HALF = 4  # a half with fewer pairs than this is not split by conversation but by context
C = 1.0  # the regression's inverse regularisation: tens of pairs against thousands of n-grams
GIVEAWAYS = 8  # features kept per row, those that gave the twin away most
TIE = 1e-9


def _habits(texts: Sequence[str]) -> list[list[float]]:
    """Each reply's habits (counts as log(1 + count), missing as 0); its messages are its lines
    (reply_text joins them so: a message holding a line break counts as two)."""
    rows = []
    for text in texts:
        found = reply_features(text.split("\n"))
        rows.append([math.log1p(v) if f in COUNTS and v else (v or 0.0)
                     for f in HABITS for v in [found[f]]])
    return rows


def _habit_names(transformer, names) -> list[str]:
    return list(HABITS)


def features():
    """The unfitted feature union: words, chars (tf-idf) and habits (standardised)."""
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    habits = make_pipeline(FunctionTransformer(_habits, feature_names_out=_habit_names),
                           StandardScaler())
    return FeatureUnion([*ngram_vectorizers(), ("habits", habits)])


@dataclass
class Judged:
    """Per pair: 1 when the discriminator picked the real reply, 0 the twin's, 0.5 a tie; and each
    feature's contribution to that verdict with the twin-minus-real difference it rests on."""

    picks: list[float]
    contributions: list[dict[str, tuple[float, float]]]  # feature -> (contribution, difference)
    halves: str  # "conversations" or "contexts": what the two halves were split by

    def accuracy(self, pairs: Sequence[int]) -> float | None:
        return sum(self.picks[i] for i in pairs) / len(pairs) if pairs else None


def halves(groups: Sequence[str], seed: int) -> tuple[list[list[int]], str]:
    """Two halves of the pair indices, whole groups (conversations) to a half, as even as the
    groups allow; by context when a half would get fewer than MIN_HALF pairs."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -len(members[g]))  # stable: a seeded order among equal sizes
    found: list[list[int]] = [[], []]
    for group in order:
        min(found, key=len).extend(members[group])
    if min(len(h) for h in found) >= MIN_HALF:
        return [sorted(h) for h in found], "conversations"
    shuffled = list(range(len(groups)))
    random.Random(seed).shuffle(shuffled)
    return [sorted(shuffled[0::2]), sorted(shuffled[1::2])], "contexts"


def _fit(real: list[str], twin: list[str], seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(features(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    model.fit(real + twin, [1] * len(real) + [0] * len(twin))
    return model


def _judge_half(model, real: list[str], twin: list[str]):
    """(picks, contributions) for pairs judged by a model trained on the other half."""
    from scipy import sparse

    union, regression = model[0], model[-1]
    names = union.get_feature_names_out()
    weights = regression.coef_[0]
    x_real, x_twin = union.transform(real), union.transform(twin)
    diff = sparse.csr_matrix(x_real - x_twin)  # sparse beside the n-grams, dense alone
    scores = diff @ weights
    picks = [0.5 if abs(s) < TIE else float(s > 0) for s in scores]
    contributions = []
    for row in range(diff.shape[0]):
        start, end = diff.indptr[row], diff.indptr[row + 1]
        contributions.append({
            str(names[j]): (float(weights[j] * d), float(-d))
            for j, d in zip(diff.indices[start:end], diff.data[start:end], strict=True)
            if d != 0})
    return picks, contributions


def judge(real: Sequence[Sequence[str]], twin: Sequence[Sequence[str]], groups: Sequence[str],
          seed: int) -> Judged | None:
    """Cross-fitted verdicts on (real, twin) reply pairs, grouped (by conversation) into halves;
    None with fewer than MIN_PAIRS pairs, or a half whose replies are all empty."""
    if len(real) != len(twin) or len(real) != len(groups):
        raise ValueError("one real reply, one twin reply and one group per pair")
    if len(real) < MIN_PAIRS:
        return None
    real_texts = [reply_text(r) for r in real]
    twin_texts = [reply_text(r) for r in twin]
    split, by = halves(groups, seed)
    picks: list[float] = [0.5] * len(real)
    contributions: list[dict[str, tuple[float, float]]] = [{} for _ in real]
    for train, scored in ((split[0], split[1]), (split[1], split[0])):
        if not any(real_texts[i] or twin_texts[i] for i in train):
            return None  # nothing to learn from: every reply of the half is empty
        model = _fit([real_texts[i] for i in train], [twin_texts[i] for i in train], seed)
        found, why = _judge_half(model, [real_texts[i] for i in scored],
                                 [twin_texts[i] for i in scored])
        for i, pick, reason in zip(scored, found, why, strict=True):
            picks[i], contributions[i] = pick, reason
    return Judged(picks, contributions, by)


def giveaways(judged: Judged, pairs: Sequence[int], count: int = GIVEAWAYS) -> list[Giveaway]:
    """The features whose contributions to the right verdict summed highest over `pairs`."""
    total: dict[str, float] = defaultdict(float)
    difference: dict[str, float] = defaultdict(float)
    for i in pairs:
        for name, (contribution, diff) in judged.contributions[i].items():
            total[name] += contribution
            difference[name] += diff
    best = sorted((n for n in total if total[n] > 0), key=lambda n: (-total[n], n))[:count]
    return [Giveaway(n, "twin" if difference[n] > 0 else "real", total[n] / len(pairs))
            for n in best]


def describe(giveaway: Giveaway) -> str:
    """A giveaway in words: 'the word "lol" (more in the real replies)'."""
    kind, _, name = giveaway.feature.partition("__")
    if kind == "words":
        what = f'the word{"s" if " " in name else ""} "{name}"'
    elif kind == "chars":
        what = f'the characters "{name}"'
    else:
        what = FEATURES.get(name, name)
    whose = "the twin's replies" if giveaway.more_in == "twin" else "the real replies"
    return f"{what} (more in {whose})"

