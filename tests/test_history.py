"""Ratings over time (arena/history.py): daily snapshots from the votes' own timestamps, and the
plot of each contestant's rating with its interval. Pure and fast.

Run as: python -m pytest tests/test_history.py -q
"""

from __future__ import annotations

from arena.history import daily_snapshots
from arena.plots import rating_history_figure
from arena.ratings import RatedBattle

A, B = "smollm2-135m/run-1", "smollm2-135m/base"


def test_one_snapshot_per_day_with_every_vote_up_to_that_day_and_narrowing_intervals() -> None:
    dated = [("2026-12-01T09:00:00", RatedBattle(A, B, "model_a" if i % 3 else "model_b")) for i in range(30)]
    dated += [
        ("2026-12-02T10:00:00", RatedBattle(A, B, "model_a" if i % 3 else "model_b")) for i in range(90)
    ]
    first, second = daily_snapshots(dated)
    assert (first.day, first.votes, second.day, second.votes) == ("2026-12-01", 30, "2026-12-02", 120)
    assert first.ratings[A] > first.ratings[B] and second.ratings[A] > second.ratings[B]
    width = [snap.intervals[A][1] - snap.intervals[A][0] for snap in (first, second)]
    assert width[1] < 0.6 * width[0]  # 4x the votes: about half as wide
    figure = rating_history_figure([first, second], {A: "SmolLM2 · LoRA", B: "SmolLM2 · base"})
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["SmolLM2 · base", "SmolLM2 · LoRA"]


def test_no_votes_no_snapshots() -> None:
    assert daily_snapshots([]) == []
    assert rating_history_figure([]).axes[0].texts[0].get_text() == "No votes yet"
