"""Data-parallel training through the same recipe: torchrun with 2 CPU processes (gloo), 2 steps.

Only rank 0 writes the adapter and run.json; run.json records the world size and the tokens each
rank trained on, so both ranks' participation is visible.

Run: ``python -m pytest tests/test_finetune_ddp.py -q``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_two_gloo_processes_train_one_adapter(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "finetune", "--model", "smollm2-135m", "--output", str(tmp_path), "--max-steps", "2",
        "--data.limit", "12", "--train.max_seq_length", "128", "--train.batch_size", "1",
        "--train.grad_accum", "1", "--train.optimizer", "adamw",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = [p for p in (tmp_path / "smollm2-135m").iterdir() if not p.name.startswith(".")]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["distributed"]["world_size"] == 2 and run["distributed"]["backend"] == "gloo"
    tokens = run["distributed"]["tokens_per_rank"]
    assert len(tokens) == 2 and all(t > 0 for t in tokens)
    assert run["train_tokens"] == sum(tokens)
    assert run["steps_done"] == 2 and len(run["losses"]) == 2
    assert (run_dir / "adapter_model.safetensors").exists()
    assert result.stdout.count("adapter written") == 1  # rank 1 wrote and printed nothing
