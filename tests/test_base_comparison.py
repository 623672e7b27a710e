""" "Did fine-tuning help?" from votes (arena/base_comparison.py) and preliminary contestants on the
board (arena/leaderboard.py). Pure and fast.

Run as: python -m pytest tests/test_base_comparison.py -q
"""

from __future__ import annotations

from arena.base_comparison import base_comparisons, wilson_interval
from arena.leaderboard import MIN_RANKED_BATTLES, PRELIMINARY, build_leaderboard
from arena.ratings import RatedBattle

ADAPTER, BASE, OTHER = "smollm2-135m/run-1", "smollm2-135m/base", "gemma3-270m/base"


def test_adapter_win_rate_against_its_own_base_with_interval_and_automatic_delta() -> None:
    battles = [RatedBattle(ADAPTER, BASE, "model_a")] * 6 + [RatedBattle(BASE, ADAPTER, "model_a")] * 2
    battles += [
        RatedBattle(BASE, ADAPTER, "tie"),
        RatedBattle(ADAPTER, OTHER, "model_b"),
    ]  # other: not counted
    paired = {"contestant": ADAPTER, "dataset": "bundled", "split": "test", "metric": "paired_delta.bertscore_f1",
              "value": 0.021, "ci_low": 0.004, "ci_high": 0.038, "created_at": "2026-12-01T00:00:00"}  # fmt: skip
    (row,) = base_comparisons(battles, [paired], [ADAPTER, BASE, OTHER])
    assert (row.adapter, row.base, row.votes) == (ADAPTER, BASE, 9)
    assert abs(row.win_rate - 6.5 / 9) < 1e-12
    assert row.ci_low < row.win_rate < row.ci_high and (row.ci_low, row.ci_high) == wilson_interval(6.5, 9)
    assert row.automatic_metric == "bertscore_f1" and row.automatic_delta == (0.021, 0.004, 0.038)


def test_a_served_adapter_without_votes_is_listed_with_no_rate() -> None:
    (row,) = base_comparisons([], [], [ADAPTER, BASE])
    assert row.votes == 0 and row.win_rate is None and row.automatic_delta is None


def test_contestants_below_the_minimum_are_preliminary_with_an_honest_interval() -> None:
    def vote(a: str, b: str, outcome: str) -> dict:
        return {"contestant_a": a, "contestant_b": b, "outcome": outcome}

    raw = [vote(ADAPTER, BASE, "model_a")]
    table = build_leaderboard(raw, [], {}, {ADAPTER: "A", BASE: "B"}, rounds=20)
    assert [s.rank for s in table.rows] == [PRELIMINARY, PRELIMINARY]
    rating = table.rows[0].rating
    assert rating is not None and rating.ci_high - rating.ci_low > 1000  # one vote: about ±680 points
    assert any("preliminary" in note for note in table.notes)
    assert table.base_comparisons[0].votes == 1

    many = [vote(ADAPTER, BASE, "model_a" if i % 4 else "model_b") for i in range(2 * MIN_RANKED_BATTLES)]
    ranked = build_leaderboard(many, [], {}, {ADAPTER: "A", BASE: "B"}, rounds=50)
    assert all(s.rank != PRELIMINARY for s in ranked.rows)
