"""Calibration battles' degraded copies, built by rule from the real question bank and MedQuAD."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.calibration import (
    Degradation,
    build_calibration_items,
    main,
    reversed_recommendation,
    wrong_dose_unit,
    wrong_drug,
)
from finetune.data import QARecord, load_dataset_source

MEDQUAD = Path(__file__).resolve().parents[1] / "../shared/data/medquad/medquad.jsonl"


def test_each_degradation_changes_what_it_names_and_nothing_else() -> None:
    assert wrong_drug("Take aspirin daily; Aspirin helps.") == "Take warfarin daily; Warfarin helps."
    assert wrong_drug("Rest and fluids.") is None
    assert wrong_dose_unit("Give 500 mg twice, or 2.5 mL, or 100 micrograms.") == (
        "Give 500 g twice, or 2.5 L, or 100 milligrams."
    )
    assert wrong_dose_unit("Stage 4 disease in 2019.") is None
    assert (
        reversed_recommendation("You should not drive. Avoid alcohol. Rest.")
        == "You should drive. Use alcohol. Rest."
    )
    assert (
        reversed_recommendation("It is recommended after surgery.") == "It is not recommended after surgery."
    )
    assert reversed_recommendation("Fever is common.") is None


def test_items_built_from_the_bundled_bank_cover_every_degradation() -> None:
    records = load_dataset_source("bundled").records
    items = build_calibration_items(records)
    kinds = {item.degradation for item in items}
    assert kinds == set(Degradation)
    by_id = {record.id: record for record in records}
    for item in items:
        assert item.degraded != item.reference and item.reference == by_id[item.question_id].answer
        assert len(item.degraded.split()) - len(item.reference.split()) in range(-2, 3)  # a small edit


@pytest.mark.skipif(not MEDQUAD.is_file(), reason="the shared MedQuAD copy is not here")
def test_medquad_references_yield_calibration_items() -> None:
    import json

    rows = [json.loads(line) for line in MEDQUAD.read_text(encoding="utf-8").splitlines()[:800]]
    records = [
        QARecord(str(i), row.get("question", ""), row.get("answer", ""), "medquad")
        for i, row in enumerate(rows)
    ]
    items = build_calibration_items(records)
    assert {item.degradation for item in items} == set(Degradation)
    assert len(items) > 50


def test_cli_writes_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "calibration.jsonl"
    assert main(["--data", "bundled", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) > 10 and "wrong_drug:" in capsys.readouterr().out
