"""`python -m arena.export --format dpo` on simulated votes: which votes become pairs, the rubric beside
them, the `datasets` folder, and the snapshot hash that training checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arena.export import main
from finetune.dpo_pairs import SnapshotMismatch, read_pairs
from tests.votes_fixture import CALIBRATED, simulated_votes


def test_dpo_export_keeps_trusted_decisive_votes_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datasets import load_from_disk

    simulated_votes(tmp_path / "votes.db", pairs=4)
    out = tmp_path / "dpo"
    assert main(["--db", str(tmp_path / "votes.db"), "--format", "dpo", "--out", str(out)]) == 0
    assert "4 preference pairs" in capsys.readouterr().out
    pairs, snapshot = read_pairs(out)
    assert len(pairs) == 4 and snapshot["votes"] == 10 and snapshot["pairs"] == 4
    assert snapshot["excluded"] == {
        "PHI-flagged": 1, "calibration or re-served": 1, "leaked": 1, "tied": 1, "too fast": 1, "uncalibrated": 1,
    }  # fmt: skip
    for pair in pairs:
        assert pair["chosen"] != pair["rejected"] and pair["rater_id"] == CALIBRATED.id
        assert pair["chosen_contestant"] in {"smollm2-135m/base", "smollm2-135m/run1"}
    assert pairs[0]["rubric_chosen"]["correctness"] == "correct" and pairs[0]["rubric_chosen"]["reasons"] == [
        "complete"
    ]
    assert pairs[0]["rubric_rejected"]["correctness"] is None
    dataset = load_from_disk(str(out / "dataset"))
    assert dataset.num_rows == 4 and {"prompt", "chosen", "rejected"} <= set(dataset.column_names)

    # raters without calibration votes are kept on request
    assert (
        main(
            ["--db", str(tmp_path / "votes.db"), "--format", "dpo", "--out", str(out), "--allow-uncalibrated"]
        )
        == 0
    )
    assert read_pairs(out)[1]["pairs"] == 5

    # an edited pairs file no longer matches its snapshot
    (out / "pairs.jsonl").write_text(json.dumps({**pairs[0], "chosen": "edited"}) + "\n")
    with pytest.raises(SnapshotMismatch, match="changed after export"):
        read_pairs(out)
