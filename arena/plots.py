"""Leaderboard figures: ratings with confidence intervals, and the pairwise win-rate heatmap.

Figures are built as `matplotlib.figure.Figure` objects (never pyplot's global state), so they are
safe in a headless server and in parallel requests; the caller saves or hands them to Gradio.

    from arena.plots import ratings_figure
    ratings_figure(leaderboard(battles)).savefig("ratings.png")
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from arena.history import Snapshot
from arena.ratings import LeaderboardRow


class PlotInputError(ValueError):
    """Plot input whose shape does not match (e.g. a win-rate matrix that is not names x names)."""


def ratings_figure(rows: Sequence[LeaderboardRow], min_ranked: int = 0) -> Figure:
    """Horizontal point-and-interval chart of Bradley-Terry ratings, best contestant at the top; a
    contestant with fewer than `min_ranked` battles is labelled "preliminary", with no rank number
    (as on the board, `arena.leaderboard.MIN_RANKED_BATTLES`)."""
    figure = Figure(figsize=(9.0, max(2.5, 1.2 + 0.5 * len(rows))), layout="constrained")
    axes = figure.add_subplot()
    if not rows:
        axes.text(0.5, 0.5, "No votes yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    # barh-style charts draw the first item at the bottom, so reverse to put the best at the top.
    ordered = sorted(rows, key=lambda row: (row.rank, -row.bt_rating, row.name))[::-1]
    positions = np.arange(len(ordered))
    ratings = np.array([row.bt_rating for row in ordered])
    # Clip at zero: with very few votes a percentile interval need not contain the point estimate.
    below = np.maximum(ratings - np.array([row.ci_low for row in ordered]), 0.0)
    above = np.maximum(np.array([row.ci_high for row in ordered]) - ratings, 0.0)
    axes.errorbar(ratings, positions, xerr=[below, above], fmt="o", capsize=4, color="tab:blue")
    ranked = [row for row in ordered[::-1] if row.battles >= min_ranked]  # best first
    ranks = {row.name: index for index, row in enumerate(ranked, start=1)}  # among ranked contestants only
    axes.set_yticks(
        positions,
        [
            f"#{ranks[row.name]} {row.name}" if row.name in ranks else f"{row.name} (preliminary)"
            for row in ordered
        ],
    )
    # Half a row of room above the best and below the last, so neither label sits on the frame.
    axes.set_ylim(-0.6, len(ordered) - 0.4)
    axes.set_xlabel("Bradley-Terry rating (Elo scale) with bootstrap interval")
    axes.grid(axis="x", alpha=0.3)
    return figure


def win_rate_heatmap(names: Sequence[str], matrix: np.ndarray) -> Figure:
    """Annotated heatmap of the row contestant's win share against the column one; blank where unplayed."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(names), len(names)):
        raise PlotInputError(
            f"Win-rate matrix has shape {matrix.shape} but {len(names)} names need "
            f"({len(names)}, {len(names)})."
        )
    # At least 6 x 5 inches: with two contestants the old 3-inch figure rendered ~40 px wide.
    side = max(5.0, 2.5 + 0.7 * len(names))
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    axes = figure.add_subplot()
    if not names:
        axes.text(0.5, 0.5, "No votes yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    image = axes.imshow(np.ma.masked_invalid(matrix), cmap="RdBu", vmin=0.0, vmax=1.0)
    positions = np.arange(len(names))
    axes.set_xticks(positions, list(names), rotation=45, ha="right")
    axes.set_yticks(positions, list(names))
    axes.set_xlabel("Opponent")
    axes.set_ylabel("Contestant")
    for row, column in np.ndindex(matrix.shape):
        value = matrix[row, column]
        if np.isnan(value):
            continue
        # White text on the saturated ends of the colour map, black in the pale middle.
        colour = "white" if abs(value - 0.5) > 0.3 else "black"
        axes.text(column, row, f"{value:.0%}", ha="center", va="center", color=colour, fontsize=8)
    figure.colorbar(image, ax=axes, label="Win share (ties count half)")
    return figure


def rating_history_figure(snapshots: Sequence[Snapshot], labels: dict[str, str] | None = None) -> Figure:
    """Each contestant's daily rating with its 95% interval as a band, one line per contestant."""
    labels = labels or {}
    figure = Figure(figsize=(9.0, 4.0), layout="constrained")
    axes = figure.add_subplot()
    if not snapshots:
        axes.text(0.5, 0.5, "No votes yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    days = [snap.day for snap in snapshots]
    names = sorted({name for snap in snapshots for name in snap.ratings})
    positions = np.arange(len(days))
    for name in names:
        present = [i for i, snap in enumerate(snapshots) if name in snap.ratings]
        ratings = [snapshots[i].ratings[name] for i in present]
        low = [snapshots[i].intervals[name][0] for i in present]
        high = [snapshots[i].intervals[name][1] for i in present]
        (line,) = axes.plot(positions[present], ratings, marker="o", label=labels.get(name, name))
        axes.fill_between(positions[present], low, high, alpha=0.15, color=line.get_color())
    axes.set_xticks(positions, days, rotation=30, ha="right")
    axes.set_ylabel("Bradley-Terry rating (95% interval)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure
