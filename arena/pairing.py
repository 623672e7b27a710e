"""Pair sampling that sends votes where they inform.

Drawing contestants by their own battle counts spends many votes on pairs whose order is already
clear. This policy draws a *pair*:

- with probability `base_share`, an adapter against its own base (the question fine-tuning must
  answer: "did it help?"), the less-voted of those pairs first;
- otherwise any pair, weighted by how much a vote on it can still change the ranking: the
  probability that its two ratings are in the wrong order (large while their intervals overlap,
  tiny once they are apart), plus `exploration / (1 + its votes)`, so under-voted pairs catch up and
  no pair is starved.

Sides are random. Intervals come from the latest board (`rating_intervals` gives quick Fisher
intervals when no bootstrap is at hand). Pure functions over counts; the caller owns the RNG.
bench/pairing_sim.py measures the votes this saves against uniform pairing.

    from arena.pairing import PairingPolicy, draw_pair
    pair = draw_pair(rng, names, base_of, pair_counts, intervals, PairingPolicy())

Run as: python -m pytest tests/test_pairing.py -q
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


class PairingError(ValueError):
    """Pairing cannot proceed (fewer than two contestants) or its settings are invalid."""


@dataclass(frozen=True)
class PairingPolicy:
    """How pairs are drawn; see the module docstring."""

    base_share: float = 0.25  # share of battles that put an adapter against its own base
    # Weight of a pair = P(its two ratings are in the wrong order) + exploration / (1 + its votes).
    # The first term is large while the intervals overlap; the second keeps under-voted pairs coming.
    exploration: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.base_share <= 1.0:
            raise PairingError(f"base_share must lie in [0, 1], got {self.base_share}.")
        if self.exploration < 0.0:
            raise PairingError(f"exploration must not be negative, got {self.exploration}.")


def pair_key(first: str, second: str) -> tuple[str, str]:
    """An unordered pair as a sorted tuple, the key of `pair_counts`."""
    return (first, second) if first <= second else (second, first)


def base_of(contestant_id: str) -> str:
    """The stable id of a contestant's own base: `<model key>/base` (itself for a base)."""
    model_key, _, _ = contestant_id.partition("/")
    return f"{model_key}/base"


def misorder_probability(first: tuple[float, float], second: tuple[float, float]) -> float:
    """P(two ratings are in the wrong order), reading each 95% interval as a normal one: 0.5 for
    equal centres, falling as the intervals separate (about 0.003 when they just stop overlapping)."""
    centre_gap = abs((first[0] + first[1]) - (second[0] + second[1])) / 2
    spread = math.hypot((first[1] - first[0]) / 3.92, (second[1] - second[0]) / 3.92)
    if spread <= 0:
        return 0.0 if centre_gap > 0 else 0.5
    return 0.5 * math.erfc(centre_gap / spread / math.sqrt(2))


def pair_weights(
    names: Sequence[str],
    pair_counts: Mapping[tuple[str, str], int],
    intervals: Mapping[str, tuple[float, float]] | None,
    policy: PairingPolicy,
) -> dict[tuple[str, str], float]:
    """The weight of every unordered pair in the general (not adapter-vs-base) draw."""
    weights = {}
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            key = pair_key(first, second)
            known = intervals is not None and first in intervals and second in intervals
            # Without intervals for both, a pair is as uncertain as can be.
            uncertain = misorder_probability(intervals[first], intervals[second]) if known else 0.5  # type: ignore[index]
            weights[key] = uncertain + policy.exploration / (1.0 + pair_counts.get(key, 0))
    return weights


def base_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Every (adapter, its own base) pair among the served contestants."""
    served = set(names)
    return [(name, base_of(name)) for name in names if base_of(name) != name and base_of(name) in served]


def draw_pair(
    rng: random.Random,
    names: Sequence[str],
    pair_counts: Mapping[tuple[str, str], int],
    intervals: Mapping[str, tuple[float, float]] | None,
    policy: PairingPolicy,
    bases: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Two different contestants in random side order. `bases` maps a contestant to its own base
    (default: `base_of` on stable ids)."""
    if len(names) < 2:
        raise PairingError(
            "The arena needs at least two contestants; train an adapter or install another base."
        )
    served = set(names)
    own_base = bases if bases is not None else {name: base_of(name) for name in names}
    adapters = [(name, own_base[name]) for name in names if own_base.get(name, name) != name]
    adapters = [(a, b) for a, b in adapters if b in served]
    if adapters and rng.random() < policy.base_share:
        weights = [1.0 / (1.0 + pair_counts.get(pair_key(a, b), 0)) for a, b in adapters]
        pair = list(rng.choices(adapters, weights=weights)[0])
    else:
        weighted = pair_weights(names, pair_counts, intervals, policy)
        keys = list(weighted)
        pair = list(rng.choices(keys, weights=[weighted[k] for k in keys])[0])
    rng.shuffle(pair)
    return pair[0], pair[1]


def rating_intervals(
    names: Sequence[str],
    wins: np.ndarray,
    *,
    regularization: float = 0.01,
    z: float = 1.96,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Bradley-Terry ratings and normal-approximation intervals from the Fisher information.

    `wins[i, j]` is i's wins over j (draws half to each). Much cheaper than a bootstrap, so pairing
    can refresh it often; the board keeps showing bootstrap intervals.
    """
    from arena.ratings import _fit_strengths  # the same penalised fit the board uses

    strengths = _fit_strengths(wins[None].astype(float), regularization)[0]
    games = wins + wins.T
    differences = strengths[:, None] - strengths[None, :]
    probability = 1.0 / (1.0 + np.exp(-differences))
    curvature = games * probability * (1.0 - probability)
    information = np.diag(curvature.sum(axis=1)) - curvature + regularization * np.eye(len(names))
    # Ratings are fixed only up to a common shift (their mean is pinned at `initial`): pin that
    # direction hard, so each error is that of the rating against the others, not of the shift.
    information += 1e4 * np.ones_like(information)
    standard_error = np.sqrt(np.clip(np.diag(np.linalg.inv(information)), 0.0, None))
    to_points = scale / math.log(base)
    ratings = initial + strengths * to_points
    half_width = z * standard_error * to_points
    return (
        {name: float(r) for name, r in zip(names, ratings, strict=True)},
        {name: (float(r - h), float(r + h)) for name, r, h in zip(names, ratings, half_width, strict=True)},
    )
