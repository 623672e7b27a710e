"""Schedule, checkpoints and adapter options on the real smollm2-135m base (one short run plus a
resume): plain LoRA on the unquantised base (`--quant 16bit`), rsLoRA on the `qv` preset, a cosine
schedule with warm-up ratio, evaluation every step with early stopping, checkpoints every two
steps, a weighted two-source data mix, and TensorBoard logging (read back with TensorBoard's own
reader). The resumed run must repeat the uninterrupted run's losses step for step.

Run: ``python -m pytest tests/test_finetune_schedule.py -q``  (about a minute on 2 quiet cores)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"
QA = ROOT / "data" / "medarena_qa.jsonl"
FLAGS = [
    "--quant", "16bit", "--lora.rank", "4", "--lora.target", "qv", "--lora.use_rslora", "true",
    "--train.max_seq_length", "128", "--train.batch_size", "1", "--train.grad_accum", "1",
    "--train.optimizer", "adamw", "--max-steps", "6", "--train.lr_scheduler", "cosine",
    "--train.warmup_ratio", "0.2", "--train.eval_steps", "1", "--train.early_stopping_patience", "3",
    # no evaluation can improve by 10 nats: the first sets the best, three more stop the run at step 4
    "--train.early_stopping_min_delta", "10", "--train.save_steps", "2",
    "--data.mix", f"bundled:0.75,{QA}:0.25", "--data.limit", "16", "--train.report_to", "tensorboard",
]  # fmt: skip

pytestmark = pytest.mark.slow


def finetune(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finetune", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )


def runs(output: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((output / MODEL).glob("*/run.json"))]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("adapters")
    result = finetune("--model", MODEL, "--output", str(output), *FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs(output)
    return output, run


def test_options_are_applied_and_recorded(first: tuple[Path, dict]) -> None:
    _, run = first
    assert run["quant"] == "16bit" and run["quantization"] == "fp32"  # unquantised base on CPU
    assert run["backend"] == "transformers-16bit-cpu"
    assert run["lora_target_modules"] == ["q_proj", "v_proj"]
    assert run["config"]["lora"]["use_rslora"] is True
    # rank 4 on q (576->576) and v (576->192) of 30 blocks
    assert run["trainable_parameters"] == 30 * 4 * ((576 + 576) + (576 + 192))


def test_early_stopping_and_cosine_warmup(first: tuple[Path, dict]) -> None:
    _, run = first
    assert run["schedule"] == {
        "total_steps": 6,
        "warmup_steps": 1,
        "stopped_early": True,
        "resumed_from": None,
    }
    assert run["steps_done"] == 4
    assert [p["step"] for p in run["validation_history"]] == [1, 2, 3, 4]
    lrs = [p["lr"] for p in run["losses"]]
    assert lrs[0] == pytest.approx(2e-4)  # after the one warm-up step: the peak
    assert lrs[1] == pytest.approx(2e-4 * 0.5 * (1 + __import__("math").cos(__import__("math").pi / 5)))


def test_mix_is_recorded(first: tuple[Path, dict]) -> None:
    _, run = first
    mix = run["data"]["mix"]
    assert [part["records"] for part in mix] == [12, 4]
    assert [part["weight"] for part in mix] == [0.75, 0.25]
    assert run["data"]["split_sizes"] == {"train": 13, "validation": 2, "test": 1}


def test_tensorboard_event_file_holds_every_step(first: tuple[Path, dict]) -> None:
    from finetune.tracking import read_tensorboard

    output, run = first
    assert run["experiment_log"]["report_to"] == "tensorboard"
    folder = output / MODEL / ".logs" / run["run_id"]
    assert Path(run["experiment_log"]["dir"]) == folder and list(folder.glob("events.out.tfevents.*"))
    scalars = read_tensorboard(folder)
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3, 4]
    for (_, logged), recorded in zip(scalars["train/loss"], run["losses"], strict=True):
        assert logged == pytest.approx(recorded["loss"], abs=1e-4)
    assert [lr for _, lr in scalars["train/learning_rate"]] == pytest.approx([p["lr"] for p in run["losses"]])
    assert all(norm > 0 for _, norm in scalars["train/grad_norm"])
    assert all(rate > 0 for _, rate in scalars["train/tokens_per_second"])
    assert all(mb > 100 for _, mb in scalars["train/peak_memory_mb"])  # a 135M model in float32
    assert [step for step, _ in scalars["validation/loss"]] == [1, 2, 3, 4]
    assert scalars["validation/loss"][-1][1] == pytest.approx(run["validation_history"][-1]["loss"], abs=1e-4)


def test_resume_repeats_the_uninterrupted_run(first: tuple[Path, dict]) -> None:
    output, run = first
    checkpoints = output / MODEL / ".checkpoints" / run["run_id"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-2", "step-4"]
    result = finetune("--resume", str(checkpoints / "step-2"), "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = next(r for r in runs(output) if r["run_id"] != run["run_id"])
    assert resumed["schedule"]["resumed_from"].endswith("step-2")
    assert resumed["steps_done"] == 4 and resumed["schedule"]["stopped_early"]
    assert [p["step"] for p in resumed["losses"]] == [1, 2, 3, 4]
    for mine, theirs in zip(resumed["losses"], run["losses"], strict=True):
        assert mine["loss"] == pytest.approx(theirs["loss"], abs=2e-3)
        assert mine["lr"] == pytest.approx(theirs["lr"])
    assert resumed["validation_loss"] == pytest.approx(run["validation_loss"], abs=2e-3)
