"""Style control (arena/style_control.py) against FastChat's own code on simulated votes with a
planted length effect: ratings within 0.01 points, and the planted effect recovered.

Pure numpy/scipy, a few seconds. Run as: python -m pytest tests/test_style_control.py -q -s
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena.ratings import RatedBattle, bradley_terry
from arena.style_control import (
    STYLE_FEATURES,
    StyleCounts,
    describe_coefficients,
    style_controlled_ratings,
    style_counts,
    style_standings,
)
from tests.reference.fastchat_style_control import compute_style_control

# Strength in log10 units (Elo = 1000 + 400 * strength) and mean answer length in words. The weakest
# contestants answer longest, so a length-loving electorate lifts them in the plain ranking.
CONTESTANTS = {
    "gemma/base": (0.30, 120),
    "gemma/run-1": (0.22, 110),
    "qwen/base": (0.12, 160),
    "qwen/run-1": (0.05, 170),
    "phi/base": (-0.02, 260),
    "smollm/base": (-0.12, 330),
    "smollm/run-1": (-0.20, 380),
    "llama/base": (-0.35, 420),
}
PLANTED_LENGTH = 1.5  # logit per unit of the normalised length difference (a - b) / (a + b + 1)
VOTES = 6000


def simulated_battles(seed: int = 7) -> list[RatedBattle]:
    rng = np.random.default_rng(seed)
    names = list(CONTESTANTS)
    battles = []
    for _ in range(VOTES):
        a, b = rng.choice(len(names), size=2, replace=False)
        counts = []
        for index in (a, b):
            mean_length = CONTESTANTS[names[index]][1]
            counts.append(
                StyleCounts(
                    length=int(rng.lognormal(math.log(mean_length), 0.35)),
                    headers=int(rng.poisson(1.0)),
                    lists=int(rng.poisson(3.0)),
                    bold=int(rng.poisson(2.0)),
                )
            )
        length_a, length_b = counts[0].length, counts[1].length
        logit = math.log(10) * (CONTESTANTS[names[a]][0] - CONTESTANTS[names[b]][0]) + PLANTED_LENGTH * (
            length_a - length_b
        ) / (length_a + length_b + 1)
        if rng.random() < 0.1:
            outcome = "tie" if rng.random() < 0.5 else "both_bad"
        else:
            outcome = "model_a" if rng.random() < 1 / (1 + math.exp(-logit)) else "model_b"
        battles.append(RatedBattle(names[a], names[b], outcome, style_a=counts[0], style_b=counts[1]))
    return battles


def fastchat_metadata(battle: RatedBattle) -> dict[str, object]:
    """The conv_metadata FastChat's preprocessing reads (header/list/bold as its per-kind dicts)."""
    assert battle.style_a is not None and battle.style_b is not None
    meta: dict[str, object] = {}
    for side, style in (("a", battle.style_a), ("b", battle.style_b)):
        meta[f"sum_assistant_{side}_tokens"] = style.length
        meta[f"header_count_{side}"] = {"h1": style.headers, "h2": 0}
        meta[f"list_count_{side}"] = {"ordered": style.lists, "unordered": 0}
        meta[f"bold_count_{side}"] = {"**": style.bold, "__": 0}
    return meta


@pytest.fixture(scope="module")
def battles() -> list[RatedBattle]:
    return simulated_battles()


def test_ratings_match_fastchats_style_control_within_a_hundredth(battles: list[RatedBattle]) -> None:
    ours = style_controlled_ratings(battles)
    theirs, coefficients = compute_style_control(
        [b.model_a for b in battles],
        [b.model_b for b in battles],
        [str(b.outcome) for b in battles],
        [fastchat_metadata(b) for b in battles],
    )
    gaps = {name: abs(ours.ratings[name] - theirs[name]) for name in CONTESTANTS}
    coefficient_gap = max(
        abs(ours.coefficients[f] - c) for f, c in zip(STYLE_FEATURES, coefficients, strict=True)
    )
    print(f"\n{len(battles)} votes: largest rating gap to FastChat {max(gaps.values()):.5f} points, "
          f"largest coefficient gap {coefficient_gap:.2e}")  # fmt: skip
    print(describe_coefficients(ours))
    assert max(gaps.values()) < 0.01
    assert coefficient_gap < 1e-4


def test_the_planted_length_effect_is_recovered_and_removed_from_the_ratings(
    battles: list[RatedBattle],
) -> None:
    fit = style_controlled_ratings(battles)
    print(f"\nplanted length effect {PLANTED_LENGTH} per unit of normalised difference; recovered "
          f"{fit.per_unit['length']:.3f}; other features {', '.join(f'{f} {fit.per_unit[f]:+.3f}' for f in STYLE_FEATURES[1:])}")  # fmt: skip
    assert abs(fit.per_unit["length"] - PLANTED_LENGTH) < 0.25
    assert all(abs(fit.per_unit[f]) < 0.25 for f in STYLE_FEATURES[1:])  # no effect planted there

    truth = {name: 1000 + 400 * strength for name, (strength, _) in CONTESTANTS.items()}
    mean_truth = sum(truth.values()) / len(truth)
    plain = bradley_terry(battles)
    plain_error = max(abs(plain[n] - (truth[n] - mean_truth + 1000)) for n in truth)
    styled_error = max(abs(fit.ratings[n] - (truth[n] - mean_truth + 1000)) for n in truth)
    print(
        f"largest error vs the true ratings: plain Bradley-Terry {plain_error:.1f}, style-controlled {styled_error:.1f}"
    )
    assert styled_error < 20 < plain_error

    standings = style_standings(plain, fit.ratings)
    assert [s.name for s in standings] == sorted(truth, key=lambda n: -truth[n])  # true order restored
    verbose = next(s for s in standings if s.name == "llama/base")
    assert verbose.rank == 8 and verbose.shift <= 0


def test_style_counts_follow_fastchats_markdown_rules() -> None:
    answer = "# Plan\n## Dose\n- **Amoxicillin** 500 mg\n* rest\n1. review __in 48 h__\n```\n# not a header\n- no\n```"
    assert style_counts(answer) == StyleCounts(length=len(answer.split()), headers=2, lists=3, bold=2)


def test_battles_without_answers_are_left_out_and_a_constant_feature_does_not_break_the_fit() -> None:
    plain = StyleCounts(40, 0, 0, 0)
    battles = [
        RatedBattle("x/base", "y/base", "model_a", style_a=plain, style_b=StyleCounts(60, 0, 0, 0))
    ] * 5
    battles += [
        RatedBattle("x/base", "y/base", "model_b", style_a=plain, style_b=StyleCounts(20, 0, 0, 0))
    ] * 5
    battles += [RatedBattle("x/base", "y/base", "model_b")]  # no answers stored: not in the fit
    fit = style_controlled_ratings(battles)
    assert fit.battles == 10 and fit.coefficients["headers"] == 0.0
    assert all(math.isfinite(r) for r in fit.ratings.values())
    assert fit.per_unit["length"] < 0  # the longer answer lost every time
