"""Paired bootstrap for base → adapter deltas over the same questions (pure, seeded).

Two contestants answered the same questions; the question is whether the adapter's gain is real.
Resampling each side independently ignores that a hard question is hard for both and gives intervals
far too wide. Here each round draws one set of question indices and applies it to both sides, so
the interval is that of the mean per-question difference (for per-answer scores: BERTScore F1,
embedding F1, ROUGE-L, BLEU, token F1) or of metric(adapter) − metric(base) for set-level metrics
(MCQ accuracy, macro F1). A gain is significant at the chosen confidence when the interval
excludes zero.

Run as (a library; `python -m arena.evaluate --report` prints these intervals):
    python -c "from arena.eval.paired import paired_delta; print(paired_delta([0.5, 0.6, 0.7], [0.6, 0.7, 0.9]))"
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from finetune.scores import percentile_interval

T = TypeVar("T")
G = TypeVar("G")

DEFAULT_ROUNDS = 2000


class PairedInputError(ValueError):
    """Inputs a paired bootstrap cannot use: unequal lengths, nothing to resample, bad settings."""


@dataclass(frozen=True)
class PairedDelta:
    """adapter − base: the observed delta and its paired percentile-bootstrap interval."""

    delta: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the paired 95% interval lies wholly above or below zero."""
        return self.ci_low > 0.0 or self.ci_high < 0.0

    def text(self, digits: int = 3) -> str:
        """'+0.080 [+0.055, +0.109] *' (the star: the interval excludes zero)."""
        mark = " *" if self.excludes_zero else ""
        return f"{self.delta:+.{digits}f} [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]{mark}"


def _check(n_base: int, n_adapter: int, rounds: int, confidence: float) -> None:
    if n_base != n_adapter:
        raise PairedInputError(
            f"A paired delta needs the same questions on both sides: got {n_base} base and {n_adapter} adapter values."
        )
    if n_base == 0:
        raise PairedInputError("A paired delta needs at least one question.")
    if rounds < 1:
        raise PairedInputError(f"Bootstrap needs at least one round, got {rounds}.")
    if not 0.0 < confidence < 1.0:
        raise PairedInputError(f"Confidence must lie strictly between 0 and 1, got {confidence}.")


def paired_delta(
    base: Sequence[float],
    adapter: Sequence[float],
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedDelta:
    """Mean of adapter[i] − base[i] with a paired percentile-bootstrap interval."""
    _check(len(base), len(adapter), rounds, confidence)
    differences = np.asarray(adapter, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    if not np.all(np.isfinite(differences)):
        raise PairedInputError("Paired values must all be finite numbers (found NaN or infinity).")
    rng = np.random.default_rng(seed)
    n = len(differences)
    chunk = max(1, 4_000_000 // n)  # bounds the index matrix in memory
    means = np.empty(rounds, dtype=np.float64)
    for start in range(0, rounds, chunk):
        stop = min(rounds, start + chunk)
        means[start:stop] = differences[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    low, high = percentile_interval(means, confidence)
    return PairedDelta(float(differences.mean()), low, high, n, confidence)


def paired_metric_delta(
    base_predictions: Sequence[T],
    adapter_predictions: Sequence[T],
    gold: Sequence[G],
    metric: Callable[[list[T], list[G]], float],
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedDelta:
    """metric(adapter) − metric(base) for a set-level metric, both sides resampled with the same indices."""
    _check(len(base_predictions), len(adapter_predictions), rounds, confidence)
    if len(gold) != len(base_predictions):
        raise PairedInputError(
            f"Got {len(base_predictions)} predictions per side but {len(gold)} gold answers."
        )
    base, adapter, truth = list(base_predictions), list(adapter_predictions), list(gold)
    observed = metric(adapter, truth) - metric(base, truth)
    rng = np.random.default_rng(seed)
    statistics = np.empty(rounds, dtype=np.float64)
    for round_index in range(rounds):
        picks = rng.integers(0, len(truth), size=len(truth))
        sample_gold = [truth[i] for i in picks]
        statistics[round_index] = metric([adapter[i] for i in picks], sample_gold) - metric(
            [base[i] for i in picks], sample_gold
        )
    low, high = percentile_interval(statistics, confidence)
    return PairedDelta(float(observed), low, high, len(truth), confidence)
