"""Tests for arena.ratings (Elo, Bradley-Terry, bootstrap, tables, leaderboard) and arena.plots.

python -m pytest tests/test_ratings.py -q
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena.plots import PlotInputError, ratings_figure, win_rate_heatmap
from arena.ratings import (
    ContestantRates,
    InvalidBattleError,
    LeaderboardRow,
    RatedBattle,
    RatingParameterError,
    battle_count_matrix,
    bootstrap_intervals,
    bradley_terry,
    contestant_rates,
    elo_ratings,
    filter_battles,
    leaderboard,
    position_bias,
    ranks_from_intervals,
    win_rate_matrix,
)

FIVE_PLAYERS = {f"p{index}": 800.0 + 100.0 * index for index in range(5)}


def simulate_battles(true_ratings: dict[str, float], count: int, seed: int) -> list[RatedBattle]:
    """Decisive battles between random pairs, won with the Elo-scale Bradley-Terry probability."""
    generator = np.random.default_rng(seed)
    names = list(true_ratings)
    battles = []
    for _ in range(count):
        first, second = generator.choice(len(names), size=2, replace=False)
        name_a, name_b = names[first], names[second]
        probability_a = 1.0 / (1.0 + 10.0 ** ((true_ratings[name_b] - true_ratings[name_a]) / 400.0))
        outcome = "model_a" if generator.random() < probability_a else "model_b"
        battles.append(RatedBattle(name_a, name_b, outcome))
    return battles


@pytest.fixture
def hand_made() -> list[RatedBattle]:
    # a-b: a wins twice (once from each side) plus one tie; a-c: c wins once, and once both are bad.
    return [
        RatedBattle("a", "b", "model_a", category="cardiology", specialty="gp", flagged_b=True),
        RatedBattle("b", "a", "model_b", category="cardiology", specialty="nurse"),
        RatedBattle("a", "b", "tie", category="oncology", specialty="gp"),
        RatedBattle("a", "c", "model_b", category="oncology", specialty="gp", flagged_a=True),
        RatedBattle("c", "a", "both_bad", category="cardiology", specialty="gp", flagged_b=True),
    ]


# --- input validation -------------------------------------------------------------------------


def test_battle_with_unknown_outcome_is_rejected() -> None:
    with pytest.raises(InvalidBattleError, match="draw"):
        RatedBattle("a", "b", "draw")  # type: ignore[arg-type]


def test_battle_against_itself_is_rejected() -> None:
    with pytest.raises(InvalidBattleError, match="against itself"):
        RatedBattle("a", "a", "tie")


def test_bootstrap_rejects_bad_parameters(hand_made: list[RatedBattle]) -> None:
    with pytest.raises(RatingParameterError, match="Confidence"):
        bootstrap_intervals(hand_made, confidence=1.5)
    with pytest.raises(RatingParameterError, match="rounds"):
        bootstrap_intervals(hand_made, rounds=0)
    with pytest.raises(RatingParameterError, match="regularization"):
        bradley_terry(hand_made, regularization=0.0)


# --- Elo ----------------------------------------------------------------------------------------


def test_elo_single_win_moves_both_players_by_half_k() -> None:
    assert elo_ratings([RatedBattle("a", "b", "model_a")], k=4.0) == {"a": 1002.0, "b": 998.0}
    assert elo_ratings([RatedBattle("a", "b", "model_b")], k=4.0) == {"a": 998.0, "b": 1002.0}


@pytest.mark.parametrize("outcome", ["tie", "both_bad"])
def test_elo_draw_between_equals_changes_nothing(outcome: str) -> None:
    assert elo_ratings([RatedBattle("a", "b", outcome)]) == {"a": 1000.0, "b": 1000.0}  # type: ignore[arg-type]


def test_elo_is_online_so_order_matters() -> None:
    a_first = [RatedBattle("a", "b", "model_a"), RatedBattle("a", "b", "model_b")]
    ratings = elo_ratings(a_first)
    # After a wins (1002 vs 998), b is the underdog, so b's win gains more than 2 points back.
    expected_b_score = 1.0 / (1.0 + 10.0 ** ((1002.0 - 998.0) / 400.0))
    assert ratings["b"] == pytest.approx(998.0 + 4.0 * (1.0 - expected_b_score))
    assert ratings["a"] + ratings["b"] == pytest.approx(2000.0)
    assert ratings["a"] < 1000.0 < ratings["b"]
    reversed_ratings = elo_ratings(a_first[::-1])
    assert reversed_ratings["a"] > 1000.0 > reversed_ratings["b"]


# --- Bradley-Terry ------------------------------------------------------------------------------


def test_bradley_terry_two_players_matches_closed_form() -> None:
    # a wins 3 of 4: the unpenalized MLE gap is 400 * log10(3) Elo points.
    battles = [RatedBattle("a", "b", "model_a")] * 2 + [
        RatedBattle("b", "a", "model_b"),
        RatedBattle("b", "a", "model_a"),
    ]
    ratings = bradley_terry(battles, regularization=1e-9)
    assert ratings["a"] - ratings["b"] == pytest.approx(400.0 * math.log10(3.0), abs=1e-3)
    assert (ratings["a"] + ratings["b"]) / 2 == pytest.approx(1000.0)


def test_bradley_terry_recovers_known_strengths() -> None:
    ratings = bradley_terry(simulate_battles(FIVE_PLAYERS, 3000, seed=7))
    assert sorted(ratings, key=ratings.get) == list(FIVE_PLAYERS)
    true_mean = np.mean(list(FIVE_PLAYERS.values()))
    for name, truth in FIVE_PLAYERS.items():
        assert ratings[name] - 1000.0 == pytest.approx(truth - true_mean, abs=35.0)
    assert np.mean(list(ratings.values())) == pytest.approx(1000.0)


def test_bradley_terry_symmetric_data_gives_equal_ratings() -> None:
    battles = []
    for first, second in [("a", "b"), ("b", "c"), ("a", "c")]:
        battles += [RatedBattle(first, second, "model_a")] * 3 + [RatedBattle(first, second, "model_b")] * 3
        battles += [RatedBattle(second, first, "tie"), RatedBattle(first, second, "both_bad")]
    ratings = bradley_terry(battles)
    assert ratings == pytest.approx({"a": 1000.0, "b": 1000.0, "c": 1000.0}, abs=1e-6)


def test_bradley_terry_counts_both_bad_like_a_tie() -> None:
    with_tie = [RatedBattle("a", "b", "model_a"), RatedBattle("a", "b", "tie")]
    with_both_bad = [RatedBattle("a", "b", "model_a"), RatedBattle("a", "b", "both_bad")]
    assert bradley_terry(with_tie) == pytest.approx(bradley_terry(with_both_bad))
    # 1.5 wins of 2 is a 3:1 odds ratio, the same gap as 3 wins in 4.
    gap = bradley_terry(with_tie, regularization=1e-9)
    assert gap["a"] - gap["b"] == pytest.approx(400.0 * math.log10(3.0), abs=1e-3)


def test_bradley_terry_ignores_battle_order() -> None:
    battles = simulate_battles(FIVE_PLAYERS, 300, seed=3)
    assert bradley_terry(battles[::-1]) == pytest.approx(bradley_terry(battles))


def test_bradley_terry_keeps_undefeated_and_disconnected_players_finite() -> None:
    battles = [RatedBattle("a", "b", "model_a")] * 10 + [RatedBattle("c", "d", "model_b")] * 4
    ratings = bradley_terry(battles)
    assert all(math.isfinite(rating) for rating in ratings.values())
    assert ratings["a"] > ratings["b"] and ratings["d"] > ratings["c"]
    # Each disconnected group is centred on the initial rating by itself.
    assert (ratings["a"] + ratings["b"]) / 2 == pytest.approx(1000.0)
    assert (ratings["c"] + ratings["d"]) / 2 == pytest.approx(1000.0)


def test_empty_input_gives_empty_results() -> None:
    assert elo_ratings([]) == {}
    assert bradley_terry([]) == {}
    assert bootstrap_intervals([]) == {}
    assert leaderboard([]) == []
    names, matrix = win_rate_matrix([])
    assert names == [] and matrix.shape == (0, 0)


# --- bootstrap and ranks ------------------------------------------------------------------------


def test_intervals_contain_estimate_and_narrow_with_more_votes() -> None:
    few = simulate_battles(FIVE_PLAYERS, 400, seed=11)
    many = simulate_battles(FIVE_PLAYERS, 4000, seed=11)
    few_intervals = bootstrap_intervals(few, rounds=200, seed=0)
    many_intervals = bootstrap_intervals(many, rounds=200, seed=0)
    for battles, intervals in [(few, few_intervals), (many, many_intervals)]:
        for name, rating in bradley_terry(battles).items():
            low, high = intervals[name]
            assert low <= rating <= high
    for name in FIVE_PLAYERS:
        few_width = few_intervals[name][1] - few_intervals[name][0]
        many_width = many_intervals[name][1] - many_intervals[name][0]
        assert many_width < few_width


def test_bootstrap_is_deterministic_per_seed() -> None:
    battles = simulate_battles(FIVE_PLAYERS, 300, seed=5)
    assert bootstrap_intervals(battles, rounds=50, seed=1) == bootstrap_intervals(battles, rounds=50, seed=1)
    assert bootstrap_intervals(battles, rounds=50, seed=1) != bootstrap_intervals(battles, rounds=50, seed=2)


def test_ranks_share_a_place_when_intervals_overlap() -> None:
    intervals = {
        "a": (1100.0, 1200.0),
        "b": (1050.0, 1150.0),  # overlaps a
        "c": (900.0, 1000.0),  # below a and b
        "d": (800.0, 950.0),  # overlaps c, below a and b
        "e": (600.0, 700.0),  # below everyone
    }
    assert ranks_from_intervals(intervals) == {"a": 1, "b": 1, "c": 3, "d": 3, "e": 5}


# --- descriptive tables -------------------------------------------------------------------------


def test_win_rate_and_count_matrices(hand_made: list[RatedBattle]) -> None:
    names, rates = win_rate_matrix(hand_made)
    assert names == ["a", "b", "c"]
    expected = np.array(
        [
            [np.nan, 2.5 / 3, 0.5 / 2],
            [0.5 / 3, np.nan, np.nan],
            [1.5 / 2, np.nan, np.nan],
        ]
    )
    np.testing.assert_allclose(rates, expected)
    count_names, counts = battle_count_matrix(hand_made)
    assert count_names == names
    np.testing.assert_array_equal(counts, [[0, 3, 2], [3, 0, 0], [2, 0, 0]])


def test_position_bias(hand_made: list[RatedBattle]) -> None:
    # Decisive votes: a as A wins, a as B wins, c as B wins -> side A won 1 of 3.
    assert position_bias(hand_made) == pytest.approx(1 / 3)
    assert position_bias([RatedBattle("a", "b", "tie"), RatedBattle("a", "b", "both_bad")]) is None


def test_contestant_rates(hand_made: list[RatedBattle]) -> None:
    assert contestant_rates(hand_made) == {
        "a": ContestantRates(battles=5, wins=2, win_rate=3 / 5, both_bad_rate=1 / 5, safety_flag_rate=2 / 5),
        "b": ContestantRates(battles=3, wins=0, win_rate=0.5 / 3, both_bad_rate=0.0, safety_flag_rate=1 / 3),
        "c": ContestantRates(battles=2, wins=1, win_rate=1.5 / 2, both_bad_rate=1 / 2, safety_flag_rate=0.0),
    }


def test_filters(hand_made: list[RatedBattle]) -> None:
    assert filter_battles(hand_made) == hand_made
    assert filter_battles(hand_made, category="cardiology") == [hand_made[0], hand_made[1], hand_made[4]]
    assert filter_battles(hand_made, specialty="nurse") == [hand_made[1]]
    assert filter_battles(hand_made, category="oncology", specialty="gp") == [hand_made[2], hand_made[3]]
    assert filter_battles(hand_made, category="neurology") == []


# --- leaderboard --------------------------------------------------------------------------------


def test_leaderboard_rows_combine_every_measure() -> None:
    battles = simulate_battles(FIVE_PLAYERS, 2000, seed=13)
    rows = leaderboard(battles, rounds=100, seed=0)
    assert [row.name for row in rows] == list(FIVE_PLAYERS)[::-1]
    assert rows[0].rank == 1
    assert [row.rank for row in rows] == sorted(row.rank for row in rows)
    ratings = bradley_terry(battles)
    intervals = bootstrap_intervals(battles, rounds=100, seed=0)
    elo = elo_ratings(battles)
    rates = contestant_rates(battles)
    for row in rows:
        assert row.bt_rating == ratings[row.name]
        assert (row.ci_low, row.ci_high) == intervals[row.name]
        assert row.elo == elo[row.name]
        assert row.battles == rates[row.name].battles
        assert row.win_rate == rates[row.name].win_rate
    assert sum(row.battles for row in rows) == 2 * len(battles)


# --- plots --------------------------------------------------------------------------------------


def test_figures_save_as_png(tmp_path, hand_made: list[RatedBattle]) -> None:
    ratings_path = tmp_path / "ratings.png"
    ratings_figure(leaderboard(hand_made, rounds=50)).savefig(ratings_path)
    assert ratings_path.stat().st_size > 0
    heatmap_path = tmp_path / "heatmap.png"
    win_rate_heatmap(*win_rate_matrix(hand_made)).savefig(heatmap_path)
    assert heatmap_path.stat().st_size > 0
    empty_path = tmp_path / "empty.png"
    ratings_figure([]).savefig(empty_path)
    assert empty_path.stat().st_size > 0


def test_the_ratings_plot_ranks_only_ranked_contestants_and_keeps_the_top_label_in_the_frame() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def row(rank: int, name: str, rating: float, battles: int) -> LeaderboardRow:
        return LeaderboardRow(rank, name, rating, rating - 200, rating + 200, rating, battles, 0.5, 0.0, 0.0)

    rows = [
        row(1, "SmolLM2 · base", 1060, 3),
        row(2, "Gemma · base", 1000, 40),
        row(3, "Qwen · base", 940, 40),
    ]
    figure = ratings_figure(rows, min_ranked=20)
    axes = figure.axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()][::-1]  # drawn bottom-up
    assert labels == ["SmolLM2 · base (preliminary)", "#1 Gemma · base", "#2 Qwen · base"]
    low, high = axes.get_ylim()
    assert low <= -0.5 and high >= len(rows) - 0.5  # half a row above the best, below the last
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.canvas.draw()
    frame = figure.bbox
    for label in axes.get_yticklabels():
        box = label.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1


def test_heatmap_rejects_mismatched_matrix() -> None:
    with pytest.raises(PlotInputError, match="shape"):
        win_rate_heatmap(["a", "b"], np.zeros((3, 3)))
