"""The ablation runner on the real smollm2-135m base: 2 ranks × 2 quantisations, two steps a
cell, each cell in its own subprocess, one table (Markdown, CSV, PNG).

Run: ``python -m pytest tests/test_finetune_sweep.py -q``  (a few minutes on 2 CPU cores)
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_two_ranks_by_two_quantisations(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "finetune", "--model", "smollm2-135m", "--sweep", "lora.rank=4,8",
        "--sweep", "quant=4bit,16bit", "--sweep-dir", str(tmp_path), "--max-steps", "2",
        "--data.limit", "12", "--train.max_seq_length", "128", "--train.batch_size", "1",
        "--train.grad_accum", "1", "--train.optimizer", "adamw", "--lora.target", "attention",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"sweep.md", "sweep.csv", "sweep.png"} <= {p.name for p in tmp_path.iterdir()}
    with (tmp_path / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["lora.rank"], r["quant"]) for r in rows] == [
        ("4", "4bit"),
        ("4", "16bit"),
        ("8", "4bit"),
        ("8", "16bit"),
    ]
    assert all(r["status"] == "ok" for r in rows)
    params = {(r["lora.rank"], r["quant"]): int(r["trainable_parameters"]) for r in rows}
    # rank 4 on q,k,v,o of 30 SmolLM2 blocks; the quantisation changes the base, not the adapter
    assert params[("4", "4bit")] == params[("4", "16bit")] == 30 * 4 * (2 * 1152 + 2 * 768)
    assert params[("8", "4bit")] == 2 * params[("4", "4bit")]
    for row in rows:
        assert float(row["train_seconds"]) > 0 and float(row["train_tokens_per_second"]) > 0
        assert float(row["peak_memory_mb"]) > 100
        assert 0 < float(row["final_train_loss"]) < 20 and 0 < float(row["validation_loss"]) < 20
        assert float(row["min_train_loss"]) <= min(
            float(row["mean_train_loss"]), float(row["initial_train_loss"])
        )
    # identical conditions: the same data in every cell, and each cell's own base precision
    runs = [__import__("json").loads(p.read_text()) for p in sorted(tmp_path.glob("cell-*/*/*/run.json"))]
    assert len({r["data"]["content_hash"] for r in runs}) == 1
    assert [r["quantization"] for r in runs] == ["nf4", "fp32", "nf4", "fp32"]
    assert "| lora.rank | quant | status |" in (tmp_path / "sweep.md").read_text()
