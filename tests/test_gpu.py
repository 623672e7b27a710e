"""The CUDA path: Unsloth 4-bit base, a few LoRA steps, VRAM measured. Skipped without CUDA.

On a GPU machine without hub access, point MEDARENA_BASE_SMOLLM2_135M at a local checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_unsloth_training_on_cuda_measures_vram(tmp_path: Path) -> None:
    pytest.importorskip("unsloth")
    from finetune.config import build_config
    from finetune.registry import get_model
    from finetune.train import train_one

    config = build_config(
        flags={
            "train": {"max_steps": 3, "max_seq_length": 128},
            "data": {"limit": 16},
            "output_dir": str(tmp_path),
        }
    )
    result = train_one(get_model("smollm2-135m"), config)
    assert result.run["backend"] == "unsloth-cuda"
    assert result.run["memory"]["peak_vram_mb"] > 0
    assert (result.adapter_dir / "adapter_model.safetensors").exists()
