"""Bootstrap intervals: they cover a known mean in most seeds, pair the models, repeat per seed."""

from __future__ import annotations

import random

from doppel.eval.bootstrap import interval, mean_of, mean_over_groups, paired


def _coin(p: float, n: int, rng: random.Random) -> list[float]:
    return [float(rng.random() < p) for _ in range(n)]


def test_intervals_cover_the_true_share_in_most_seeds():
    covered = 0
    widths = []
    for seed in range(60):
        values = _coin(0.3, 48, random.Random(1000 + seed))
        low, high = interval(mean_of(values), len(values), seed)
        covered += low <= 0.3 <= high
        widths.append(high - low)
    assert covered >= 51  # 95% nominal; the percentile bootstrap runs a little short at n=48
    # about +-13 points for a share near 30% over 48 contexts (the estimate)
    assert 0.18 < sum(widths) / len(widths) < 0.34


def test_a_real_difference_is_outside_noise_and_no_difference_is_within_it():
    rng = random.Random(7)
    low, high = _coin(0.2, 48, rng), _coin(0.8, 48, rng)
    assert not paired(mean_of(high), mean_of(low), 48, seed=0).within_noise
    same = _coin(0.5, 48, rng)
    found = paired(mean_of(same), mean_of(list(same)), 48, seed=0)
    assert found.within_noise and found.change == (0.0, 0.0)


def test_same_seed_same_interval_and_nothing_to_draw_is_none():
    rng = random.Random(1)
    values = [rng.gauss(0, 1) for _ in range(30)]
    assert interval(mean_of(values), 30, seed=3) == interval(mean_of(values), 30, seed=3)
    assert interval(mean_of(values), 30, seed=3) != interval(mean_of(values), 30, seed=4)
    assert interval(mean_of([]), 0, seed=0) is None


def test_a_mean_across_speakers_is_their_means_mean_and_its_interval_covers_the_truth():
    from doppel.eval.means import membership

    covered = 0
    for seed in range(40):
        rng = random.Random(500 + seed)
        # two speakers with shares 0.2 and 0.6 (true mean across them 0.4), contexts interleaved
        respondents = [rng.choice("AB") for _ in range(48)]
        units = membership(respondents)
        values = {g: _coin(0.2 if g == "A" else 0.6, respondents.count(g), rng) for g in "AB"}
        statistic = mean_over_groups({g: mean_of(v) for g, v in values.items()}, units)
        every = list(range(len(units)))
        assert statistic(every) == sum(sum(v) / len(v) for v in values.values()) / 2
        low, high = interval(statistic, len(units), seed)
        covered += low <= 0.4 <= high
    assert covered >= 34  # 95% nominal
    assert membership(["A", "B", "A"]) == [("A", 0), ("B", 0), ("A", 1)]
