""" "Did fine-tuning help?" from humans: each adapter's win rate against its own base, with a Wilson
interval and the number of votes, beside the automatic paired delta `arena.evaluate` stored
(`paired_delta.<metric>` rows: adapter − base on the same questions, paired bootstrap interval).

Pure functions over rated battles and stored evaluation rows.

    from arena.base_comparison import base_comparisons
    base_comparisons(battles, eval_rows)   # [BaseComparison(adapter='smollm2-135m/run-1', ...)]

Run as: python -m pytest tests/test_base_comparison.py -q
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arena.eval.results import PAIRED_PREFIX, latest_rows
from arena.pairing import base_of
from arena.ratings import RatedBattle

# Which automatic delta sits beside the human win rate, in order of preference.
AUTOMATIC_DELTA_METRICS = ("bertscore_f1", "mcq_accuracy", "embedding_f1", "rougeL")


@dataclass(frozen=True)
class BaseComparison:
    """An adapter against its own base: human votes and the automatic paired delta."""

    adapter: str  # stable id
    base: str  # stable id
    votes: int
    win_rate: float | None  # ties and both_bad count half; None without votes
    ci_low: float | None
    ci_high: float | None
    automatic_metric: str | None = None
    automatic_delta: tuple[float, float | None, float | None] | None = None  # (adapter − base, low, high)


def wilson_interval(successes: float, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (half-successes allowed, for draws)."""
    if trials <= 0:
        return (0.0, 1.0)
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _automatic_deltas(eval_rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, tuple]]:
    deltas: dict[str, dict[str, tuple]] = {}
    for row in latest_rows(eval_rows):
        metric = str(row.get("metric", ""))
        if metric.startswith(PAIRED_PREFIX):
            contestant = row.get("contestant_id") or row["contestant"]
            deltas.setdefault(contestant, {})[metric[len(PAIRED_PREFIX) :]] = (
                float(row["value"]),
                row.get("ci_low"),
                row.get("ci_high"),
            )
    return deltas


def base_tally(battles: Iterable[RatedBattle]) -> tuple[dict[str, float], dict[str, int]]:
    """Per adapter id: wins against its own base (ties and both_bad half) and votes against it."""
    wins: dict[str, float] = {}
    votes: dict[str, int] = {}
    for battle in battles:
        for adapter, other, side in ((battle.model_a, battle.model_b, "model_a"), (battle.model_b, battle.model_a, "model_b")):  # fmt: skip
            if base_of(adapter) == adapter or base_of(adapter) != other:
                continue
            votes[adapter] = votes.get(adapter, 0) + 1
            won = 1.0 if battle.outcome == side else 0.0 if battle.outcome in ("model_a", "model_b") else 0.5
            wins[adapter] = wins.get(adapter, 0.0) + won
    return wins, votes


def base_comparisons(
    battles: Iterable[RatedBattle],
    eval_rows: Iterable[Mapping[str, Any]] = (),
    contestants: Sequence[str] = (),
) -> list[BaseComparison]:
    """One row per adapter that met its own base in a vote or is listed in `contestants` with its
    base, sorted by adapter id."""
    wins, votes = base_tally(battles)
    return comparisons_from_counts(wins, votes, eval_rows, contestants)


def comparisons_from_counts(
    wins: Mapping[str, float],
    votes: Mapping[str, int],
    eval_rows: Iterable[Mapping[str, Any]] = (),
    contestants: Sequence[str] = (),
) -> list[BaseComparison]:
    """`base_comparisons` from counts already kept (the board keeps them vote by vote)."""
    served = set(contestants)
    adapters = {a for a, n in votes.items() if n} | {
        c for c in served if base_of(c) != c and base_of(c) in served
    }
    automatic = _automatic_deltas(eval_rows)
    rows = []
    for adapter in sorted(adapters):
        count = votes.get(adapter, 0)
        low, high = wilson_interval(wins.get(adapter, 0.0), count) if count else (None, None)
        metric = next((m for m in AUTOMATIC_DELTA_METRICS if m in automatic.get(adapter, {})), None)
        rows.append(
            BaseComparison(
                adapter=adapter,
                base=base_of(adapter),
                votes=count,
                win_rate=wins.get(adapter, 0.0) / count if count else None,
                ci_low=low,
                ci_high=high,
                automatic_metric=metric,
                automatic_delta=automatic[adapter][metric] if metric else None,
            )
        )
    return rows
