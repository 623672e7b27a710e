"""The studies' training options without a model: optimiser choices, checkpoint pruning, the
experiment-log writers (TensorBoard read back with its own reader) and the task setting."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from finetune.checkpoint import META_FILE, find_checkpoint, prune_checkpoints
from finetune.config import OPTIMIZERS, ConfigError, build_config


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_is_accepted(optimizer: str) -> None:
    assert build_config(flags={"train": {"optimizer": optimizer}}).train.optimizer == optimizer


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"train": {"optimizer": "paged_lion"}}, "paged_adamw_8bit, paged_adamw_32bit"),
        ({"train": {"save_total_limit": "2"}}, "save_total_limit needs train.save_steps"),
        ({"train": {"save_steps": "2", "save_total_limit": "0"}}, "save_total_limit must be at least 1"),
        ({"train": {"report_to": "mlflow"}}, "report_to must be one of none, tensorboard, wandb"),
        ({"task": "ner"}, "task must be one of sft, mcq"),
    ],
)
def test_bad_options_name_the_field(flags: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(flags=flags)


def test_paged_optimizers_fall_back_to_torch_adamw_without_cuda() -> None:
    import torch

    from finetune.steps import make_optimizer

    model = torch.nn.Linear(4, 2)
    for name in ("paged_adamw_8bit", "paged_adamw_32bit"):
        optimizer, used = make_optimizer(model, build_config(flags={"train": {"optimizer": name}}))
        if torch.cuda.is_available():
            assert used == name and type(optimizer).__name__.startswith("PagedAdamW")
        else:  # paged states need CUDA unified memory; run.json records the fallback
            assert used == "adamw" and isinstance(optimizer, torch.optim.AdamW)


def test_save_total_limit_keeps_the_newest_checkpoints(tmp_path: Path) -> None:
    for step in (2, 4, 6, 8, 10):
        folder = tmp_path / f"step-{step}"
        folder.mkdir()
        (folder / META_FILE).write_text(json.dumps({"step": step}))
    (tmp_path / ".step-12-staging").mkdir()  # a half-written checkpoint is never counted or removed
    removed = prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in removed] == ["step-2", "step-4", "step-6"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".step-12-staging", "step-10", "step-8"]
    assert find_checkpoint(tmp_path).name == "step-10"  # step 10 sorts after step 8 by number


def test_tensorboard_log_is_read_back(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="pip install tensorboard (setup.sh installs it)")
    from finetune.tracking import open_log, read_tensorboard, step_values

    log = open_log("tensorboard", tmp_path, "smollm2-135m/test", {})
    for step in (1, 2, 3):
        log.log(step, step_values(2.0 / step, 1e-4 * step, 0.5, tokens=300, seconds=1.5, memory_mb=800.0))
    log.log(3, {"validation/loss": 1.25})
    log.close()
    scalars = read_tensorboard(tmp_path)
    assert scalars["train/loss"] == [(1, 2.0), (2, 1.0), (3, pytest.approx(2 / 3))]
    assert [v for _, v in scalars["train/learning_rate"]] == pytest.approx([1e-4, 2e-4, 3e-4])
    assert [v for _, v in scalars["train/tokens_per_second"]] == [200.0] * 3
    assert scalars["validation/loss"] == [(3, 1.25)]


def test_a_missing_writer_package_is_named_before_training() -> None:
    from finetune.tracking import WRITER_PACKAGES, check_writer_installed

    check_writer_installed("none")
    for report_to, package in WRITER_PACKAGES.items():
        if importlib.util.find_spec(package) is None:
            with pytest.raises(ImportError, match=f"needs the {package} package: pip install {package}"):
                check_writer_installed(report_to)
        else:
            check_writer_installed(report_to)


def test_report_to_none_writes_nothing(tmp_path: Path) -> None:
    from finetune.tracking import open_log

    log = open_log("none", tmp_path / "logs", "x/y", {})
    log.log(1, {"train/loss": 1.0})
    log.close()
    assert not (tmp_path / "logs").exists()
