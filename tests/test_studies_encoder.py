"""The studies' BioBERT baseline and the data description, end to end through their CLIs, offline.

`python -m finetune --model biobert --task mcq` trains the multiple-choice head on the embedded
all-MiniLM-L6-v2 (BioBERT's offline stand-in) for two short epochs on a sample of the bundled MCQ
set, scores each epoch like the decoders, logs to TensorBoard, and lands in the studies' table;
`python -m finetune.data_describe` writes its plot, CSVs and DatasetDict.

Run: ``python -m pytest tests/test_studies_encoder.py -q``  (about a minute on 2 quiet cores)
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def biobert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    output = tmp_path_factory.mktemp("adapters")
    result = run_module(
        "finetune", "--model", "biobert", "--task", "mcq", "--preset", "demo", "--output", str(output),
        "--data.limit", "10", "--train.epochs", "2", "--train.batch_size", "4", "--train.grad_accum", "1",
        "--train.max_seq_length", "64", "--train.report_to", "tensorboard",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run_json,) = (output / "biobert").glob("*/run.json")
    return output, json.loads(run_json.read_text()), result.stdout


def test_biobert_trains_offline_and_scores_every_epoch(biobert: tuple[Path, dict, str]) -> None:
    output, run, stdout = biobert
    assert run["kind"] == "encoder" and run["task"] == "mcq" and run["stand_in"] is True
    assert run["base_id"].startswith("all-MiniLM-L6-v2 (offline stand-in for dmis-lab/biobert")
    assert run["data"]["source"] == "bundled-mcq"  # --task mcq reads the bundled set's MCQ sibling
    assert run["data"]["split_sizes"] == {"train": 8, "validation": 1, "test": 1}
    # 8 questions in micro-batches of 4 (grouped by option count), one per step: 2 steps an epoch
    assert [e["epoch"] for e in run["epochs"]] == [1, 2] and run["steps_done"] == 4
    assert len(run["losses"]) == 4 and run["min_train_loss"] <= run["initial_train_loss"]
    for scored in [*run["epochs"], run["test"]]:
        for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
            value = scored["metrics"][f"mcq_{name}"]
            assert 0 <= value["ci_low"] <= value["value"] <= value["ci_high"] <= 1
    assert "epoch 1/2 (step 2) validation: loss" in stdout and "epoch 2/2 (step 4) validation" in stdout
    assert "acc " in stdout and " F1 " in stdout and "test accuracy" in stdout
    assert run["trainable_parameters"] == run["total_parameters"] > 20_000_000  # every weight trains
    assert run["optimizer_used"] == "adamw_8bit" or run["optimizer_used"] == "adamw"
    assert (output / "biobert" / run["run_id"] / "model.safetensors").exists()


def test_biobert_logs_to_tensorboard(biobert: tuple[Path, dict, str]) -> None:
    from finetune.tracking import read_tensorboard

    output, run, _ = biobert
    scalars = read_tensorboard(output / "biobert" / ".logs" / run["run_id"])
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3, 4]
    assert [step for step, _ in scalars["validation/mcq_accuracy"]] == [2, 4]
    assert scalars["validation/mcq_accuracy"][-1][1] == pytest.approx(
        run["epochs"][-1]["metrics"]["mcq_accuracy"]["value"]
    )


def test_biobert_has_a_row_in_the_studies_table(biobert: tuple[Path, dict, str]) -> None:
    from arena.eval.studies_report import HEADER, study_rows, table_cells

    output, run, _ = biobert
    (study,) = study_rows([], output)  # no stored decoder results: the encoder's run alone
    cells = dict(zip(HEADER, table_cells(study), strict=True))
    accuracy = run["test"]["metrics"]["mcq_accuracy"]
    assert cells["Model"] == f"BioBERT-base-cased-v1.2 · MCQ head · {run['run_id']}"
    assert cells["Data set"] == "bundled-mcq (test)" and cells["n"] == "1"
    assert cells["MCQ by"] == "multiple-choice head" and cells["Quant"] == "fp32"
    assert cells["Acc"] == f"{accuracy['value']:.3f} [{accuracy['ci_low']:.3f}, {accuracy['ci_high']:.3f}]"
    assert cells["Loss initial"] and cells["Val loss"] and cells["Train s"]


def test_the_encoder_refuses_free_text_and_decoders_refuse_task_mcq(tmp_path: Path, capsys) -> None:
    from finetune.__main__ import main

    free_text = str(ROOT / "data" / "medarena_qa.jsonl")
    assert main(["--model", "biobert", "--task", "mcq", "--data", free_text, "--output", str(tmp_path)]) == 2
    assert "needs multiple-choice data" in capsys.readouterr().err
    assert main(["--model", "biobert", "--output", str(tmp_path)]) == 2
    assert "train it with --task mcq" in capsys.readouterr().err
    assert main(["--model", "smollm2-135m", "--task", "mcq", "--output", str(tmp_path)]) == 2
    assert "--task mcq trains an encoder baseline" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_describe_writes_plot_csv_and_datasetdict(tmp_path: Path) -> None:
    import datasets

    from finetune.data import load_dataset_source

    out = tmp_path / "describe"
    result = run_module(
        "finetune.data_describe", "bundled-mcq", "--models", "smollm2-135m,biobert", "--out", str(out),
        "--max-seq-length", "128",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "describe.json").read_text())
    assert summary["content_hash"] == load_dataset_source("bundled-mcq").content_hash  # run.json's hash
    assert summary["split_sizes"] == {"train": 66, "validation": 8, "test": 9}
    by_model = {s["model"]: s for s in summary["token_lengths"]}
    assert set(by_model) == {"smollm2-135m", "biobert"} and all(s["n"] == 83 for s in by_model.values())
    # the decoder's example carries the system prompt and chat template; the encoder's pair does not
    assert by_model["smollm2-135m"]["median"] > by_model["biobert"]["median"]
    assert sum(summary["categories"].values()) == 83 and summary["sources"] == {"bundled-mcq": 83}
    assert (out / "describe.png").stat().st_size > 10_000
    reloaded = datasets.load_from_disk(str(out / "dataset"))
    assert {name: len(part) for name, part in reloaded.items()} == summary["split_sizes"]
    assert summary["content_hash"] in reloaded["train"].info.description
    with (out / "test.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == list(reloaded["test"]["id"])
    assert json.loads(rows[0]["options"])[rows[0]["answer"]]  # options as JSON, answer a letter
    assert "tokenizer" in result.stdout and "categories:" in result.stdout


def test_describe_notes_an_encoder_on_free_text_instead_of_failing(tmp_path: Path) -> None:
    from finetune.data_describe import describe

    summary = describe("bundled", ["biobert"], tmp_path, limit=12, seed=42, max_seq_length=512)
    assert summary["not_measured"] == ["biobert"] and summary["token_lengths"] == []
    assert summary["split_sizes"] == {"train": 10, "validation": 1, "test": 1}
    assert (tmp_path / "describe.png").exists() and (tmp_path / "dataset" / "dataset_dict.json").exists()


@pytest.mark.parametrize("command", [["finetune.data_describe"], ["finetune.data", "--describe"]])
def test_describe_refuses_an_unknown_tokenizer_in_one_line(tmp_path: Path, command: list[str]) -> None:
    result = run_module(*command, "bundled", "--models", "gpt-5", "--out", str(tmp_path))
    assert result.returncode == 2 and "unknown model 'gpt-5'" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
