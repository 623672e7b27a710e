"""Resumable checkpoints: adapter weights, optimiser and scheduler state, step, loss history, RNG.

Written every `train.save_steps` steps to a hidden folder beside the runs, which the adapter
catalogue does not list: `adapters/<model>/.checkpoints/<run-id>/step-<N>/` (atomically: staged,
then renamed). `--resume` takes one step folder, or a run's checkpoint folder (its latest step).

    python -m finetune --resume adapters/smollm2-135m/.checkpoints/<run-id>
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.pt"
META_FILE = "checkpoint.json"


class CheckpointError(ValueError):
    """A --resume path that holds no usable checkpoint."""


@dataclass
class LoopState:
    """Everything the loop needs to continue exactly where it stopped."""

    step: int = 0
    losses: list[dict[str, float]] = field(default_factory=list)
    validation_history: list[dict[str, float]] = field(default_factory=list)
    best_validation_loss: float | None = None
    evaluations_without_improvement: int = 0
    useful_tokens: int = 0
    train_seconds: float = 0.0


def checkpoint_root(output_root: Path, model_key: str, run_id: str) -> Path:
    """Where a run's resumable checkpoints are kept."""
    return output_root / model_key / ".checkpoints" / run_id


def save_checkpoint(
    folder: Path, model: Any, optimizer: Any, scheduler: Any, state: LoopState, meta: dict[str, Any]
) -> Path:
    """Write step-<N>/ under `folder` atomically; returns it."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"step-{state.step}"
    staging = Path(tempfile.mkdtemp(prefix=f".step-{state.step}-", dir=folder))
    try:
        model.save_pretrained(staging)
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "loop": state.__dict__,
                "torch_rng": torch.get_rng_state(),
            },
            staging / STATE_FILE,
        )
        (staging / META_FILE).write_text(json.dumps({**meta, "step": state.step}, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def step_number(folder: Path) -> int:
    """The N of a step-<N> folder (0 for a name without digits)."""
    return int(re.sub(r"\D", "", folder.name) or 0)


def prune_checkpoints(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` step-<N> checkpoints in a run's checkpoint folder; returns the deleted."""
    steps = sorted((p for p in folder.glob("step-*") if (p / META_FILE).exists()), key=step_number)
    doomed = steps[: max(0, len(steps) - keep)]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def find_checkpoint(path: str | Path) -> Path:
    """The step folder `path` names, or the latest step folder inside it."""
    path = Path(path)
    if (path / META_FILE).exists():
        return path
    steps = [p for p in path.glob("step-*") if (p / META_FILE).exists()] if path.is_dir() else []
    if not steps:
        raise CheckpointError(f"{path} holds no checkpoint (expected step-<N>/{META_FILE})")
    return max(steps, key=step_number)


def read_meta(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's model key, run id, config and step."""
    return json.loads((checkpoint / META_FILE).read_text())


def restore(checkpoint: Path, model: Any, optimizer: Any, scheduler: Any) -> LoopState:
    """Load adapter weights, optimiser, scheduler and RNG state; returns the loop state."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(checkpoint / "adapter_model.safetensors"))
    saved = torch.load(checkpoint / STATE_FILE, weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    return LoopState(**saved["loop"])
