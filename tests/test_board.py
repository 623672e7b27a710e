"""Leaderboard presentation: rank ranges from intervals, votes-needed hints, short names."""

from __future__ import annotations

from arena.board import rank_label, rank_ranges, short_name, votes_to_separate
from arena.ratings import LeaderboardRow


def row(name: str, rating: float, low: float, high: float) -> LeaderboardRow:
    return LeaderboardRow(1, name, rating, low, high, 1000.0, 10, 0.5, 0.0, 0.0)


def test_overlapping_intervals_share_a_rank_range_and_separated_ones_do_not() -> None:
    rows = [row("a", 1050, 1010, 1090), row("b", 1000, 960, 1040), row("c", 900, 860, 940)]
    ranges = rank_ranges(rows)
    assert ranges == {"a": (1, 2), "b": (1, 2), "c": (3, 3)}
    assert rank_label(ranges["a"], 3) == "1–2" and rank_label(ranges["c"], 3) == "3"
    two = rank_ranges(rows[:2])
    assert rank_label(two["a"], 2) == "not yet separable"


def test_votes_to_separate_grows_with_the_overlap() -> None:
    close = [row("a", 1020, 980, 1060), row("b", 1000, 960, 1040)]
    far = [row("a", 1060, 1020, 1100), row("b", 1000, 960, 1040)]
    assert votes_to_separate(close, 20) > votes_to_separate(far, 20) > 0
    assert votes_to_separate([row("a", 1100, 1080, 1120), row("b", 1000, 980, 1020)], 20) is None


def test_short_names_hide_run_ids_and_quantisation() -> None:
    assert short_name("SmolLM2-135M-Instruct · LoRA 20261122-215050 · nf4") == "SmolLM2-135M-Instruct · LoRA"
    assert short_name("SmolLM2-135M-Instruct · base · nf4") == "SmolLM2-135M-Instruct · base"
