"""Rater quality you can measure: agreement (Cohen's and Fleiss' kappa with bootstrap intervals),
calibration accuracy per rater, the minimum dwell time a vote needs, and the per-hour caps and
battle rate limit. Pure functions and one small limiter object; no Gradio, no SQL.

Rules (the defaults of `QualitySettings`):

- a vote cast sooner after the battle started than its answers take to read (both answers' words at
  `reading_words_per_s`) is kept, not rated, and counted on the board as too fast;
- a session may cast `votes_per_session_per_hour` votes and a client `votes_per_client_per_hour`;
  a client may start `battles_per_client_per_hour` battles. Past a cap the request is refused with a
  sentence saying when it may try again; nothing is stored, and no earlier vote is touched;
- `calibration_share` of battles on bank questions are calibration battles, `agreement_share` of
  battles re-serve a finished battle of another rater, blind.

    from arena.rater_quality import cohen_kappa, fleiss_kappa, kappa_interval
    cohen_kappa(["model_a", "tie"], ["model_a", "model_b"])

Run as: python -m pytest tests/test_rater_quality.py -q
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from arena.rubric import wilson_interval


class RateLimited(RuntimeError):
    """A cap or rate limit was reached; the message is one sentence for the clinician."""


@dataclass(frozen=True)
class QualitySettings:
    """The integrity and rater-quality knobs (see the module docstring)."""

    reading_words_per_s: float = 15.0  # 0 turns the dwell check off
    votes_per_session_per_hour: int = 120
    votes_per_client_per_hour: int = 300
    battles_per_client_per_hour: int = 300
    calibration_share: float = 0.05
    agreement_share: float = 0.05
    min_calibration_accuracy: float = 0.75  # what "calibrated raters only" keeps

    @classmethod
    def off(cls) -> QualitySettings:
        """No dwell check, no calibration or re-served battles: what a bare `ArenaService` uses
        (the app turns the rules on from its flags)."""
        return cls(reading_words_per_s=0.0, calibration_share=0.0, agreement_share=0.0)

    def __post_init__(self) -> None:
        if self.reading_words_per_s < 0 or not math.isfinite(self.reading_words_per_s):
            raise ValueError("reading_words_per_s must be a finite number >= 0 (0 turns the check off).")
        for name in (
            "votes_per_session_per_hour",
            "votes_per_client_per_hour",
            "battles_per_client_per_hour",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1.")
        for name in ("calibration_share", "agreement_share", "min_calibration_accuracy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1].")


def min_dwell_s(answers: Sequence[str], words_per_s: float) -> float:
    """Seconds it takes to read `answers` at `words_per_s` (0 when the check is off)."""
    if words_per_s <= 0:
        return 0.0
    return sum(len(answer.split()) for answer in answers) / words_per_s


@dataclass
class SlidingWindowLimiter:
    """At most `limit` events per key in any `window_s` seconds; thread-safe, clock injectable."""

    limit: int
    window_s: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _events: dict[Hashable, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, key: Hashable) -> float | None:
        """None when one more event is allowed now, else the seconds until it will be."""
        with self._lock:
            events = self._trim(key)
            if len(events) < self.limit:
                return None
            return max(0.0, events[0] + self.window_s - self.clock())

    def record(self, key: Hashable) -> None:
        """Count one event for `key` now."""
        with self._lock:
            self._trim(key).append(self.clock())

    def _trim(self, key: Hashable) -> deque[float]:
        events = self._events.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while events and events[0] <= cutoff:
            events.popleft()
        return events


def wait_sentence(what: str, limit: int, wait_s: float) -> str:
    """The refusal a limiter's answer turns into."""
    minutes = max(1, math.ceil(wait_s / 60))
    return (
        f"You have reached the limit of {limit} {what} per hour; nothing was stored and your earlier "
        f"votes are kept. Please try again in about {minutes} minute{'s' if minutes != 1 else ''}."
    )


# --------------------------------------------------------------------------- agreement


def cohen_kappa(first: Sequence[str], second: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Cohen's kappa of two raters' labels on the same items (1 = perfect, 0 = chance).

    Matches `sklearn.metrics.cohen_kappa_score` (unweighted); nan when the expected agreement is 1."""
    if len(first) != len(second) or not first:
        raise ValueError("Cohen's kappa needs two equally long, non-empty label sequences.")
    categories = list(labels) if labels is not None else sorted(set(first) | set(second))
    index = {label: i for i, label in enumerate(categories)}
    matrix = np.zeros((len(categories), len(categories)))
    for a, b in zip(first, second, strict=True):
        matrix[index[a], index[b]] += 1
    total = matrix.sum()
    observed = np.trace(matrix) / total
    expected = float((matrix.sum(axis=1) @ matrix.sum(axis=0)) / total**2)
    if expected == 1.0:
        return math.nan
    return float((observed - expected) / (1 - expected))


def fleiss_kappa(ratings: Sequence[Sequence[str]], labels: Sequence[str] | None = None) -> float:
    """Fleiss' kappa over items each rated by the same number (>= 2) of raters (Fleiss 1971)."""
    if not ratings or any(len(item) != len(ratings[0]) for item in ratings) or len(ratings[0]) < 2:
        raise ValueError("Fleiss' kappa needs items each rated by the same number (at least 2) of raters.")
    categories = list(labels) if labels is not None else sorted({label for item in ratings for label in item})
    counts = np.array([[item.count(label) for label in categories] for item in ratings], dtype=float)
    raters = counts.sum(axis=1)[0]
    per_item = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    observed = per_item.mean()
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares**2).sum())
    if expected == 1.0:
        return math.nan
    return float((observed - expected) / (1 - expected))


@dataclass(frozen=True)
class Agreement:
    """A kappa with its percentile-bootstrap interval over items, and how many items it rests on."""

    kappa: float
    low: float
    high: float
    items: int
    method: str  # "Cohen" (two ratings per item) or "Fleiss" (more)


def agreement(ratings: Sequence[Sequence[str]], *, rounds: int = 500, seed: int = 0) -> Agreement | None:
    """Kappa over items rated by several raters: Cohen's with two ratings per item, else Fleiss' over
    the items' first k ratings (k the smallest count); None with fewer than 2 items."""
    usable = [list(item) for item in ratings if len(item) >= 2]
    if len(usable) < 2:
        return None
    k = min(len(item) for item in usable)
    usable = [item[:k] for item in usable]
    labels = sorted({label for item in usable for label in item})

    def statistic(items: Sequence[Sequence[str]]) -> float:
        if k == 2:
            return cohen_kappa([item[0] for item in items], [item[1] for item in items], labels)
        return fleiss_kappa(items, labels)

    value = statistic(usable)
    rng = np.random.default_rng(seed)
    draws = [statistic([usable[i] for i in rng.integers(0, len(usable), len(usable))]) for _ in range(rounds)]
    finite = [draw for draw in draws if math.isfinite(draw)]
    low, high = (
        (float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975))) if finite else (math.nan,) * 2
    )
    return Agreement(value, low, high, len(usable), "Cohen" if k == 2 else "Fleiss")


# --------------------------------------------------------------------------- calibration accuracy


@dataclass(frozen=True)
class RaterAccuracy:
    """A rater's calibration record: right answers, calibration battles, Wilson interval."""

    rater_id: str
    correct: int
    battles: int
    low: float
    high: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.battles


def calibration_accuracy(results: Sequence[tuple[str, bool]]) -> dict[str, RaterAccuracy]:
    """Per rater over (rater id, voted for the reference) pairs."""
    tallies: dict[str, list[int]] = {}
    for rater, correct in results:
        tally = tallies.setdefault(rater, [0, 0])
        tally[0] += int(correct)
        tally[1] += 1
    return {
        rater: RaterAccuracy(rater, correct, n, *wilson_interval(correct, n))
        for rater, (correct, n) in sorted(tallies.items())
    }
