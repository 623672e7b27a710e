"""Pure tests: free-text overlap metrics (arena/eval/text_overlap.py), the paired bootstrap (arena/eval/paired.py)
and the studies' table (arena/eval/studies_report.py) over hand-written result rows.

python -m pytest tests/test_overlap_paired.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arena.eval.mcq_loglik import ItemScores
from arena.eval.paired import PairedInputError, paired_delta, paired_metric_delta
from arena.eval.studies_report import HEADER, studies_markdown, study_rows, table_cells
from arena.eval.text_overlap import OverlapInputError, exact_match, normalise_answer, overlap, token_f1
from finetune.scores import bootstrap_ci, mcq_metrics


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


def _row(contestant: str, adapter: str | None, metric: str, value: float, low: float, high: float) -> dict:
    return {
        "contestant": contestant, "model_key": "smollm2-135m", "adapter_run": adapter, "dataset": "medquad",
        "dataset_hash": "h", "split": "test", "n": 32, "metric": metric, "value": value, "ci_low": low,
        "ci_high": high, "created_at": "2026-11-23T21:00:00", "id": 1,
    }  # fmt: skip


def test_studies_table_reads_run_json_only_when_it_belongs_to_the_run(tmp_path: Path) -> None:
    base, adapter = "SmolLM2-135M · base · nf4", "SmolLM2-135M · LoRA r1 · nf4"
    rows = [
        _row(base, None, "bertscore_f1", 0.512, 0.478, 0.546),
        _row(adapter, "r1", "bertscore_f1", 0.530, 0.497, 0.561),
        _row(adapter, "r1", "paired_delta.bertscore_f1", 0.018, 0.006, 0.031),
    ]
    run_dir = tmp_path / "smollm2-135m" / "r1"
    run_dir.mkdir(parents=True)
    run = {"model_key": "smollm2-135m", "run_id": "r1", "trainable_parameters": 4_884_480,
           "total_parameters": 139_400_000, "train_seconds": 1234.4, "train_tokens_per_second": 98.7,
           "memory": {"peak_rss_mb": 2760.9, "peak_vram_mb": None}, "quantization": "nf4",
           "losses": [{"step": 1, "loss": 3.2}, {"step": 2, "loss": 2.1}, {"step": 3, "loss": 2.4}],
           "validation_loss": 2.55}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(run))
    cells = {
        s.row.contestant: dict(zip(HEADER, table_cells(s), strict=True)) for s in study_rows(rows, tmp_path)
    }
    assert cells[adapter]["Trainable"] == "4.9M" and cells[adapter]["Train s"] == "1234"
    assert cells[adapter]["Peak train MB"] == "2761" and cells[adapter]["Train tok/s"] == "98.7"
    assert [cells[adapter][f"Loss {name}"] for name in ("initial", "final", "min", "mean")] == [
        "3.200", "2.400", "2.100", "2.567",
    ]  # fmt: skip
    assert cells[adapter]["Val loss"] == "2.550" and cells[base]["Loss initial"] == ""
    assert cells[adapter]["BERTScore F1"] == "0.530 [0.497, 0.561]"
    assert cells[adapter]["Δ vs base (paired 95% CI)"] == "BERTScore F1 +0.018 [+0.006, +0.031] *"
    # Params is the registry's SmolLM2-135M, not run.json's count of packed 4-bit weights.
    assert (
        cells[base]["Params"] == "135.0M" and cells[base]["Quant"] == "nf4" and cells[base]["Trainable"] == ""
    )
    # A run.json copied from another run lends nothing.
    (run_dir / "run.json").write_text(json.dumps({**run, "run_id": "other"}))
    cells = {
        s.row.contestant: dict(zip(HEADER, table_cells(s), strict=True)) for s in study_rows(rows, tmp_path)
    }
    assert cells[adapter]["Trainable"] == "" and cells[adapter]["Train s"] == ""
    assert "| Model |" in studies_markdown(rows, tmp_path)
