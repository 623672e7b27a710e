"""Pair sampling policy (arena/pairing.py): adapter-vs-own-base share, overlapping and under-voted
pairs favoured, Fisher intervals. Pure and fast; the votes it saves are measured by
bench/pairing_sim.py.

Run as: python -m pytest tests/test_pair_policy.py -q
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from arena.pairing import (
    PairingError,
    PairingPolicy,
    base_pairs,
    draw_pair,
    misorder_probability,
    pair_key,
    rating_intervals,
)

NAMES = ["gemma/base", "gemma/run-1", "qwen/base", "qwen/run-1", "smollm/base"]


def test_the_configured_share_of_battles_puts_an_adapter_against_its_own_base() -> None:
    rng = random.Random(0)
    policy = PairingPolicy(base_share=0.5)
    pairs = [pair_key(*draw_pair(rng, NAMES, {}, None, policy)) for _ in range(4000)]
    own_base = {pair_key(a, b) for a, b in base_pairs(NAMES)}
    share = sum(pair in own_base for pair in pairs) / len(pairs)
    # 0.5 from the base draw, plus the general draw landing on those 2 of 10 pairs (0.5 * 0.2)
    assert 0.55 < share < 0.65
    assert base_pairs(NAMES) == [("gemma/run-1", "gemma/base"), ("qwen/run-1", "qwen/base")]


def test_overlapping_and_under_voted_pairs_are_drawn_more() -> None:
    rng = random.Random(1)
    policy = PairingPolicy(base_share=0.0)
    intervals = {
        "gemma/base": (1190, 1210),
        "gemma/run-1": (1185, 1215),  # overlaps gemma/base
        "qwen/base": (900, 920),
        "qwen/run-1": (600, 620),
        "smollm/base": (300, 320),
    }
    counts = {pair_key("qwen/base", "smollm/base"): 0}
    drawn = Counter(pair_key(*draw_pair(rng, NAMES, counts, intervals, policy)) for _ in range(6000))
    overlapping = drawn[pair_key("gemma/base", "gemma/run-1")]
    separated = drawn[pair_key("qwen/base", "smollm/base")]
    # about 0.43 + 0.05 against 0 + 0.05: the overlapping pair takes most draws, the separated one is not starved
    assert overlapping > 5 * separated > 0

    unrated = Counter(pair_key(*draw_pair(rng, NAMES, {}, None, policy)) for _ in range(6000))
    assert max(unrated.values()) < 1.3 * min(unrated.values())  # no intervals yet: every pair alike


def test_misorder_probability_falls_as_intervals_separate() -> None:
    same = misorder_probability((990, 1010), (990, 1010))
    close = misorder_probability((990, 1030), (980, 1020))
    apart = misorder_probability((900, 940), (1000, 1040))
    assert same == 0.5 and 0.2 < close < 0.5 and apart < 0.01


def test_fisher_intervals_narrow_with_votes_and_order_the_contestants() -> None:
    wins = np.array([[0, 30, 45], [20, 0, 35], [5, 15, 0]], dtype=float)
    ratings, intervals = rating_intervals(["a", "b", "c"], wins)
    assert ratings["a"] > ratings["b"] > ratings["c"]
    _, wider = rating_intervals(["a", "b", "c"], wins / 10)
    assert all(
        (wider[n][1] - wider[n][0]) > 2.5 * (intervals[n][1] - intervals[n][0]) for n in ratings
    )  # 10x fewer votes: about sqrt(10) wider


def test_bad_settings_and_too_few_contestants_are_refused() -> None:
    with pytest.raises(PairingError, match="base_share"):
        PairingPolicy(base_share=1.5)
    with pytest.raises(PairingError, match="at least two contestants"):
        draw_pair(random.Random(0), NAMES[:1], {}, None, PairingPolicy())
