"""Contestant pairing in the service (`arena.service.Pairing`, policy in arena/pairing.py): under-voted
pairs are drawn more, adapters meet their own base, sides are random.

Pure and fast: no model, no database. Run as: python -m pytest tests/test_pairing.py -q
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from arena.pairing import PairingPolicy, pair_key
from arena.service import BattleError, Pairing

NAMES = ["smollm2-135m/base", "smollm2-135m/run-1", "gemma3-270m/base", "gemma3-270m/run-1"]


def test_a_new_contestant_is_drawn_far_more_often_than_settled_pairs() -> None:
    pairing = Pairing(random.Random(0), PairingPolicy(base_share=0.0))
    counts = {pair_key(a, b): 60 for i, a in enumerate(NAMES[:3]) for b in NAMES[i + 1 : 3]}
    settled = {NAMES[0]: (1190, 1210), NAMES[1]: (990, 1010), NAMES[2]: (790, 810)}  # far apart
    drawn = Counter(name for _ in range(2000) for name in pairing.draw(NAMES, counts, settled))
    # The newcomer (no votes, no interval) is in every uncertain pair: weight ~0.55 against ~0.001.
    assert drawn[NAMES[3]] > 0.9 * 2000


def test_equal_counts_draw_every_contestant_and_every_contestant_takes_side_a() -> None:
    pairing = Pairing(random.Random(1))
    pairs = [pairing.draw(NAMES, {}) for _ in range(4000)]
    drawn = Counter(name for pair in pairs for name in pair)
    assert all(1600 < drawn[name] < 2400 for name in NAMES)  # 2000 expected each
    assert all(a != b for a, b in pairs)
    side_a = Counter(a for a, _ in pairs)
    assert all(side_a[name] > 0.4 * drawn[name] for name in NAMES)  # about half of its draws on side A
    own_base = sum(
        pair_key(*pair) in {pair_key(NAMES[0], NAMES[1]), pair_key(NAMES[2], NAMES[3])} for pair in pairs
    )
    assert own_base > 0.4 * len(pairs)  # 25% by the base share plus their 2 of 6 pairs in the rest


def test_fewer_than_two_contestants_is_refused() -> None:
    with pytest.raises(BattleError, match="at least two contestants"):
        Pairing(random.Random(0)).draw(NAMES[:1], {})
