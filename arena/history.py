"""Ratings over time: dated daily snapshots of the board, derived from the votes' own timestamps.

The raw votes are the record, so a snapshot is not stored: the snapshot for a day is the
Bradley-Terry fit of every vote cast up to the end of that day (UTC), with normal-approximation
intervals from the Fisher information (`arena.pairing.rating_intervals`; a bootstrap per day would
cost hundreds of fits). One pass over the votes, one 14x14 fit per day.

    from arena.history import daily_snapshots
    snapshots = daily_snapshots(derived_votes)      # [Snapshot(day='2026-12-01', ...), ...]

Run as: python -m pytest tests/test_history.py -q
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from arena.pairing import rating_intervals
from arena.ratings import PairTally, RatedBattle, tally_battle


@dataclass(frozen=True)
class Snapshot:
    """The board at the end of one day: ratings and 95% intervals by contestant, and the votes so far."""

    day: str  # YYYY-MM-DD (UTC)
    votes: int
    ratings: dict[str, float]
    intervals: dict[str, tuple[float, float]]


def _wins(tally: PairTally) -> tuple[list[str], np.ndarray]:
    names = sorted({name for low, high, _ in tally for name in (low, high)})
    index = {name: i for i, name in enumerate(names)}
    wins = np.zeros((len(names), len(names)))
    for (low, high, column), count in tally.items():
        i, j = index[low], index[high]
        if column == 0:
            wins[i, j] += count
        elif column == 1:
            wins[j, i] += count
        else:
            wins[i, j] += 0.5 * count
            wins[j, i] += 0.5 * count
    return names, wins


def snapshot(day: str, tally: PairTally, votes: int) -> Snapshot:
    """The snapshot of a pair tally."""
    names, wins = _wins(tally)
    ratings, intervals = rating_intervals(names, wins) if names else ({}, {})
    return Snapshot(day, votes, ratings, intervals)


def daily_snapshots(dated: Iterable[tuple[str, RatedBattle]]) -> list[Snapshot]:
    """One snapshot per day that had votes, from (timestamp, battle) pairs in vote order; the
    timestamp is ISO 8601 (`votes.created_at`), its first ten characters the day."""
    tally: PairTally = Counter()
    snapshots = []
    votes = 0
    current: str | None = None
    for stamp, battle in dated:
        day = str(stamp)[:10]
        if current is not None and day != current:
            snapshots.append(snapshot(current, tally, votes))
        current = day
        tally_battle(tally, battle)
        votes += 1
    if current is not None:
        snapshots.append(snapshot(current, tally, votes))
    return snapshots
