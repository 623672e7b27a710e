"""Rater quality: kappa against scikit-learn on a known fixture, Fleiss' kappa on Fleiss' own table,
the sliding-window caps with an injected clock, and dwell time."""

from __future__ import annotations

import pytest

from arena.rater_quality import (
    QualitySettings,
    SlidingWindowLimiter,
    agreement,
    calibration_accuracy,
    cohen_kappa,
    fleiss_kappa,
    min_dwell_s,
    wait_sentence,
)

# Two raters on 12 battles: agree on 9 (known agreement 0.75).
FIRST = ["model_a", "model_a", "model_b", "tie", "model_a", "both_bad", "model_b", "model_b", "model_a", "tie", "model_a", "model_b"]  # fmt: skip
SECOND = ["model_a", "model_b", "model_b", "tie", "model_a", "both_bad", "model_a", "model_b", "model_a", "model_a", "model_a", "model_b"]  # fmt: skip


def test_cohen_kappa_equals_sklearn_on_a_known_fixture() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    ours = cohen_kappa(FIRST, SECOND)
    assert ours == pytest.approx(sklearn_metrics.cohen_kappa_score(FIRST, SECOND), abs=1e-12)
    assert ours == pytest.approx((0.75 - 49 / 144) / (1 - 49 / 144))  # po 9/12; pe 49/144 from the margins
    assert cohen_kappa(FIRST, FIRST) == 1.0


def test_fleiss_kappa_reproduces_fleiss_1971() -> None:
    # The worked example of Fleiss (1971) as on Wikipedia: 10 items, 14 raters, 5 categories; kappa 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
    ratings = [[str(category) for category, count in enumerate(row) for _ in range(count)] for row in table]
    assert fleiss_kappa(ratings) == pytest.approx(0.2099, abs=1e-3)


def test_agreement_gives_an_interval_around_kappa() -> None:
    result = agreement([[a, b] for a, b in zip(FIRST, SECOND, strict=True)], rounds=200)
    assert result is not None and result.method == "Cohen" and result.items == 12
    assert result.low <= result.kappa <= result.high
    assert agreement([["model_a", "model_a"]]) is None


def test_limiter_refuses_past_the_cap_and_frees_after_the_window() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(2, window_s=3600, clock=lambda: now[0])
    for _ in range(2):
        assert limiter.check("s") is None
        limiter.record("s")
    assert limiter.check("s") == pytest.approx(3600)
    assert limiter.check("other") is None
    now[0] = 3600.5
    assert limiter.check("s") is None
    sentence = wait_sentence("votes in one session", 2, 61)
    assert "limit of 2 votes" in sentence and "2 minutes" in sentence and "earlier votes are kept" in sentence


def test_dwell_scales_with_answer_length_and_settings_are_checked() -> None:
    assert min_dwell_s(["one two three", "four five six"], 3.0) == 2.0
    assert min_dwell_s(["a " * 300], 0.0) == 0.0
    with pytest.raises(ValueError):
        QualitySettings(calibration_share=1.5)
    accuracy = calibration_accuracy([("r1", True), ("r1", False), ("r2", True)])
    assert accuracy["r1"].accuracy == 0.5 and accuracy["r2"].battles == 1
