"""Contestant pairing (`arena.service.Pairing`): under-voted contestants are drawn more, sides are random.

Pure and fast: no model, no database. Run as: python -m pytest tests/test_pairing.py -q
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from arena.service import BattleError, Pairing

NAMES = ["smollm2-135m/base", "smollm2-135m/run-1", "gemma3-270m/base", "gemma3-270m/run-1"]


def test_under_voted_contestants_are_drawn_far_more_often() -> None:
    pairing = Pairing(random.Random(0))
    counts = {NAMES[0]: 60, NAMES[1]: 60, NAMES[2]: 0, NAMES[3]: 0}
    drawn = Counter(name for _ in range(2000) for name in pairing.draw(NAMES, counts))
    # Weights 1/61 vs 1/1: the two fresh contestants fill almost every pair.
    assert min(drawn[NAMES[2]], drawn[NAMES[3]]) > 10 * max(drawn[NAMES[0]], drawn[NAMES[1]])


def test_equal_counts_draw_evenly_and_every_contestant_takes_side_a() -> None:
    pairing = Pairing(random.Random(1))
    pairs = [pairing.draw(NAMES, {}) for _ in range(4000)]
    drawn = Counter(name for pair in pairs for name in pair)
    assert all(1700 < drawn[name] < 2300 for name in NAMES)  # 2000 expected each
    assert all(a != b for a, b in pairs)
    side_a = Counter(a for a, _ in pairs)
    assert all(side_a[name] > 0.4 * drawn[name] for name in NAMES)  # about half of its draws on side A


def test_fewer_than_two_contestants_is_refused() -> None:
    with pytest.raises(BattleError, match="at least two contestants"):
        Pairing(random.Random(0)).draw(NAMES[:1], {})
