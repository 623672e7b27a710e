"""Pure tests for the free-text overlap metrics (arena/text_overlap.py) and the paired bootstrap (arena/paired.py).

python -m pytest tests/test_overlap_paired.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from arena.mcq_loglik import ItemScores
from arena.metrics import bootstrap_ci, mcq_metrics
from arena.paired import PairedInputError, paired_delta, paired_metric_delta
from arena.text_overlap import OverlapInputError, exact_match, normalise_answer, overlap, token_f1


def test_squad_normalisation_and_exact_match() -> None:
    assert normalise_answer("The  Metformin, twice-daily!") == "metformin twicedaily"
    assert exact_match("The aspirin.", "aspirin") == 1.0
    assert exact_match("aspirin daily", "aspirin") == 0.0


def test_token_f1_matches_the_squad_formula() -> None:
    # 2 shared tokens; precision 2/3, recall 2/4 -> F1 = 2*(2/3)*(1/2)/(2/3+1/2) = 4/7
    assert token_f1("metformin twice daily", "take metformin daily now") == pytest.approx(4 / 7)
    assert token_f1("insulin", "metformin") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "metformin") == 0.0


def test_bleu_orders_answers_by_overlap() -> None:
    reference = "Start metformin 500 mg twice daily with meals and recheck HbA1c in three months."
    close = "Start metformin 500 mg twice daily with food and recheck HbA1c in three months."
    far = "The football match ended in a draw after extra time."
    result = overlap([reference, close, far], [reference] * 3)
    assert result.bleu[0] == pytest.approx(1.0)
    assert 0.3 < result.bleu[1] < 1.0
    assert result.bleu[2] < 0.1
    assert result.exact_match == [1.0, 0.0, 0.0]
    assert 0.0 < result.corpus_bleu < 1.0
    with pytest.raises(OverlapInputError, match="2 answers but 1 references"):
        overlap(["a", "b"], ["a"])


def test_paired_interval_sees_a_small_consistent_gain_that_unpaired_intervals_miss() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.8, size=40)  # questions differ a lot in difficulty
    adapter = base + 0.02 + rng.normal(0, 0.005, size=40)  # every question gains a little
    delta = paired_delta(base.tolist(), adapter.tolist(), seed=3)
    assert delta.excludes_zero and delta.ci_low > 0.0
    assert delta.delta == pytest.approx(float((adapter - base).mean()))
    # Unpaired: the two means' intervals overlap, so they could not show the gain.
    _, base_high = bootstrap_ci(base.tolist(), seed=3)
    adapter_low, _ = bootstrap_ci(adapter.tolist(), seed=3)
    assert adapter_low < base_high
    assert paired_delta(base.tolist(), adapter.tolist(), seed=3) == delta  # seeded
    no_gain = paired_delta(base.tolist(), (base + rng.normal(0, 0.05, size=40)).tolist())
    assert no_gain.ci_low < 0.0 < no_gain.ci_high and not no_gain.excludes_zero
    assert "*" in delta.text() and "*" not in no_gain.text()


def test_paired_metric_delta_on_mcq_accuracy() -> None:
    gold = ["A", "B", "C", "D"] * 10
    base = ["D"] * 40  # the tiny-model habit: always "D"
    adapter = gold[:30] + ["D"] * 10
    labels = ["A", "B", "C", "D"]
    result = paired_metric_delta(
        base, adapter, gold, lambda p, g: mcq_metrics(p, g, labels).accuracy, rounds=500
    )
    assert result.delta == pytest.approx(mcq_metrics(adapter, gold, labels).accuracy - 0.25)
    assert result.ci_low > 0.0
    with pytest.raises(PairedInputError, match="same questions"):
        paired_delta([0.1, 0.2], [0.1])
    with pytest.raises(PairedInputError, match="gold"):
        paired_metric_delta(base, adapter, gold[:3], lambda p, g: 0.0)


def test_length_normalised_choice_can_differ_from_the_raw_argmax() -> None:
    item = ItemScores(
        id="q",
        gold="B",
        labels=("A", "B"),
        choices=("A. Flu", "B. Streptococcal pharyngitis"),
        loglik=(-6.0, -9.0),
    )
    assert item.predicted() == "A"  # raw: the short option has the higher total log-likelihood
    assert item.predicted(normalised=True) == "B"  # per character: -6/6 = -1.0 < -9/29
