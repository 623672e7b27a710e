"""Pure scores that training and evaluation share: MCQ accuracy and macro precision/recall/F1,
percentile-bootstrap intervals, and the one error every metric raises for inputs it cannot score.

It sits below both halves, so the encoder baseline (`finetune.mcq_encoder`, scored each epoch) and
the arena's evaluation of the decoders (`arena.eval.scoring`, `arena.eval.metrics`) report the same
numbers on the same predictions, and finetune never imports the arena.

    from finetune import scores

    scores.mcq_metrics(["A", None], ["A", "B"], labels=["A", "B"]).accuracy     # 0.5
    scores.mcq_intervals(["A", "B", "B"], ["A", "B", "A"], ["A", "B"])["f1_macro"]   # (value, low, high)
    low, high = scores.bootstrap_ci([0.2, 0.4, 0.9])

Run as: python -m pytest tests/test_metrics.py -q
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

UNREADABLE_LABEL = "<unreadable>"  # sentinel for MCQ answers no letter could be read from
BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0  # fixed, so a rerun on cached answers reproduces every interval exactly
MCQ_FIELDS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")  # what mcq_intervals scores

_Prediction = TypeVar("_Prediction")
_Gold = TypeVar("_Gold")


class MetricInputError(ValueError):
    """A metric was called with inputs it cannot score (mismatched lengths, empty references...)."""


# --------------------------------------------------------------------------- multiple choice


@dataclass(frozen=True)
class McqMetrics:
    """Accuracy, macro precision/recall/F1 and the unreadable share over one set of MCQ answers."""

    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    unreadable_rate: float  # share of answers no option letter could be read from
    n: int


def mcq_metrics(predicted: Sequence[str | None], gold: Sequence[str], labels: Sequence[str]) -> McqMetrics:
    """Accuracy and macro P/R/F1 over `labels`; an unreadable (None) prediction counts as wrong.

    None becomes a sentinel label outside `labels`, so it lowers recall of the gold class without
    adding a class of its own: the numbers equal scikit-learn's precision_recall_fscore_support with
    average="macro", labels=labels, zero_division=0.
    """
    if len(predicted) != len(gold):
        raise MetricInputError(f"Got {len(predicted)} predictions but {len(gold)} gold answers.")
    if not gold:
        raise MetricInputError("MCQ metrics need at least one answered question.")
    if not labels or len(set(labels)) != len(labels) or UNREADABLE_LABEL in labels:
        raise MetricInputError(
            f"Labels must be a non-empty list of distinct option letters, got {list(labels)!r}."
        )
    unknown_gold = sorted(set(gold) - set(labels))
    if unknown_gold:
        raise MetricInputError(f"Gold answers {unknown_gold!r} are not among the labels {list(labels)!r}.")

    resolved = [UNREADABLE_LABEL if label is None else label for label in predicted]
    precisions, recalls, f1s = [], [], []
    for label in labels:
        true_positive = sum(p == label and g == label for p, g in zip(resolved, gold, strict=True))
        false_positive = sum(p == label and g != label for p, g in zip(resolved, gold, strict=True))
        false_negative = sum(p != label and g == label for p, g in zip(resolved, gold, strict=True))
        precisions.append(_safe_ratio(true_positive, true_positive + false_positive))
        recalls.append(_safe_ratio(true_positive, true_positive + false_negative))
        # scikit-learn's form of F1, which is 0 (not undefined) when precision or recall is undefined.
        f1s.append(_safe_ratio(2 * true_positive, 2 * true_positive + false_positive + false_negative))
    n = len(gold)
    return McqMetrics(
        accuracy=sum(p == g for p, g in zip(resolved, gold, strict=True)) / n,
        precision_macro=sum(precisions) / len(labels),
        recall_macro=sum(recalls) / len(labels),
        f1_macro=sum(f1s) / len(labels),
        unreadable_rate=sum(label is None for label in predicted) / n,
        n=n,
    )


def _safe_ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


# --------------------------------------------------------------------------- bootstrap

_MAX_RESAMPLE_CELLS = 4_000_000  # bounds the index matrix of one chunk of bootstrap rounds


def bootstrap_ci(
    values: Sequence[float], *, rounds: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of `values` (deterministic for a seed)."""
    data = np.asarray(values, dtype=np.float64)
    _check_bootstrap_args(len(data), rounds, confidence)
    if not np.all(np.isfinite(data)):
        raise MetricInputError("Bootstrap values must all be finite numbers (found NaN or infinity).")
    rng = np.random.default_rng(seed)
    rounds_per_chunk = max(1, _MAX_RESAMPLE_CELLS // len(data))
    means = np.empty(rounds, dtype=np.float64)
    for start in range(0, rounds, rounds_per_chunk):
        stop = min(rounds, start + rounds_per_chunk)
        indices = rng.integers(0, len(data), size=(stop - start, len(data)))
        means[start:stop] = data[indices].mean(axis=1)
    return percentile_interval(means, confidence)


def bootstrap_metric_ci(
    pairs: Sequence[tuple[_Prediction, _Gold]],
    metric_fn: Callable[[list[_Prediction], list[_Gold]], float],
    *,
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of a metric that is not a mean (accuracy, macro F1...).

    Each round resamples (prediction, gold) pairs with replacement and calls
    metric_fn(predictions, golds), e.g. `lambda p, g: mcq_metrics(p, g, labels).f1_macro`.
    """
    _check_bootstrap_args(len(pairs), rounds, confidence)
    rng = np.random.default_rng(seed)
    statistics = np.empty(rounds, dtype=np.float64)
    for round_index in range(rounds):
        sample = [pairs[index] for index in rng.integers(0, len(pairs), size=len(pairs))]
        statistics[round_index] = metric_fn([p for p, _ in sample], [g for _, g in sample])
    return percentile_interval(statistics, confidence)


def _check_bootstrap_args(n: int, rounds: int, confidence: float) -> None:
    if n == 0:
        raise MetricInputError("Cannot bootstrap a confidence interval from zero values.")
    if rounds < 1:
        raise MetricInputError(f"Bootstrap needs at least one round, got {rounds}.")
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"Confidence must lie strictly between 0 and 1, got {confidence}.")


def percentile_interval(statistics: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central `confidence` interval of bootstrap statistics (percentile method)."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [tail, 1.0 - tail])
    return float(low), float(high)


def mcq_intervals(
    predicted: Sequence[str | None],
    gold: Sequence[str],
    labels: Sequence[str],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, tuple[float, float, float]]:
    """Accuracy and macro P/R/F1 of predicted option letters (None: unreadable), each as
    (value, low, high) with a 95% bootstrap interval over the items; keyed by `MCQ_FIELDS`."""
    overall = mcq_metrics(predicted, gold, labels)
    pairs = list(zip(predicted, gold, strict=True))

    def resampled(field: str) -> tuple[float, float]:
        return bootstrap_metric_ci(
            pairs, lambda p, g: getattr(mcq_metrics(p, g, labels), field), rounds=rounds, seed=seed
        )

    correct = [float(p == g) for p, g in pairs]
    return {
        "accuracy": (overall.accuracy, *bootstrap_ci(correct, rounds=rounds, seed=seed)),
        **{field: (getattr(overall, field), *resampled(field)) for field in MCQ_FIELDS[1:]},
    }
