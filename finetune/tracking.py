"""Experiment logging beside run.json, through each library's own writer: `--train.report_to`.

- `tensorboard`: event files written by `torch.utils.tensorboard.SummaryWriter` (no server needed;
  `tensorboard --logdir adapters/<model>/.logs` shows them);
- `wandb`: a Weights & Biases run, offline (files under the log folder, `wandb sync` uploads them
  later) unless `WANDB_API_KEY` is set or `WANDB_MODE` says otherwise;
- `none`: run.json only.

Per optimiser step: train/loss, train/learning_rate, train/grad_norm, train/tokens_per_second and
train/peak_memory_mb; per evaluation: validation/<metric>. Logs go to
`<output>/<model>/.logs/<run-id>/` (hidden, so the adapter catalogue does not list it).

    python -m finetune --model smollm2-135m --preset demo --train.report_to tensorboard
"""

from __future__ import annotations

import importlib.util
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

STEP_METRICS = ("loss", "learning_rate", "grad_norm", "tokens_per_second", "peak_memory_mb")


class ExperimentLog(Protocol):
    """Where per-step and validation figures go; every writer takes the same calls."""

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Record scalar `values` (names like "train/loss") at optimiser step `step`."""
        ...

    def close(self) -> None:
        """Flush and close the writer."""
        ...


class NoLog:
    """report_to none: run.json alone holds the figures."""

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Nothing to record."""

    def close(self) -> None:
        """Nothing to close."""


@dataclass
class TensorBoardLog:
    """TensorBoard event files, written by torch's SummaryWriter."""

    folder: Path
    writer: Any = field(init=False)

    def __post_init__(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # torch imports tensorboard lazily, here
            raise ImportError(
                "train.report_to tensorboard needs the tensorboard package: pip install tensorboard "
                "(bash setup.sh --test installs it)"
            ) from error
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """One scalar per value at this step."""
        for name, value in values.items():
            self.writer.add_scalar(name, float(value), global_step=step)

    def close(self) -> None:
        """Flush the event file to disk and close it."""
        self.writer.flush()
        self.writer.close()


@dataclass
class WandbLog:
    """A Weights & Biases run; offline (local files only) when no API key is set."""

    folder: Path
    run_name: str
    config: Mapping[str, Any]
    run: Any = field(init=False)

    def __post_init__(self) -> None:
        try:
            import wandb
        except ImportError as error:
            raise ImportError("train.report_to wandb needs the wandb package: pip install wandb") from error
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "medarena"),
            name=self.run_name,
            dir=str(self.folder),
            mode=mode,
            config=dict(self.config),
        )

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """One W&B history row at this step."""
        self.run.log({name: float(value) for name, value in values.items()}, step=step)

    def close(self) -> None:
        """Finish the run (offline: its files stay under the log folder)."""
        self.run.finish()


def log_folder(output_root: Path, model_key: str, run_id: str) -> Path:
    """Where a run's experiment logs are written."""
    return output_root / model_key / ".logs" / run_id


# The package each writer needs, so a run fails before its weights load rather than after.
WRITER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_writer_installed(report_to: str) -> None:
    """Raise ImportError (one sentence) when `report_to` names a writer whose package is missing."""
    package = WRITER_PACKAGES.get(report_to)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ImportError(f"train.report_to {report_to} needs the {package} package: pip install {package}")


def open_log(report_to: str, folder: Path, run_name: str, config: Mapping[str, Any]) -> ExperimentLog:
    """The writer `report_to` names (checked by the config: tensorboard, wandb or none)."""
    if report_to == "tensorboard":
        return TensorBoardLog(folder)
    if report_to == "wandb":
        return WandbLog(folder, run_name, config)
    return NoLog()


def peak_memory_mb(device: str) -> float:
    """Peak memory so far: torch-allocated VRAM on CUDA, else the process's peak RSS."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def step_values(
    loss: float, learning_rate: float, grad_norm: float, tokens: int, seconds: float, memory_mb: float
) -> dict[str, float]:
    """One optimiser step's figures under their logged names."""
    return {
        "train/loss": loss,
        "train/learning_rate": learning_rate,
        "train/grad_norm": grad_norm,
        "train/tokens_per_second": tokens / max(seconds, 1e-9),
        "train/peak_memory_mb": memory_mb,
    }


def read_tensorboard(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `folder`, read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }
