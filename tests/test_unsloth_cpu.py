"""The GPU training path's real Unsloth calls, run on this CPU (Unsloth 2026.10.9 falls back to
transformers + PEFT without CUDA): `FastLanguageModel.from_pretrained(..., load_in_4bit=True)` on
the converted embedded SmolLM2, `get_peft_model` with the resolved targets, a few steps through
the project's own loop, save; then the adapter reloaded the way the arena serves it.

`MEDARENA_TRAIN_BACKEND=unsloth` selects this path; the run is a `python -m finetune`
subprocess, so it also checks that the entry point imports Unsloth before transformers/PEFT.

Run: ``python -m pytest tests/test_unsloth_cpu.py -q``
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SERVING_BACKEND, UNSLOTH_ON_CUDA

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# find_spec, not importorskip: importing Unsloth here would patch transformers for every later test.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("unsloth") is None,
        reason="setup.sh --test installs Unsloth (--no-deps) for these tests",
    ),
    pytest.mark.skipif(
        UNSLOTH_ON_CUDA, reason="Unsloth's CPU fallback; on CUDA tests/test_gpu.py runs its CUDA path"
    ),
]


@pytest.fixture(scope="module")
def unsloth_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    output = tmp_path_factory.mktemp("unsloth-adapters")
    command = [
        sys.executable, "-m", "finetune", "--model", MODEL, "--max-steps", "3", "--data.limit", "16",
        "--train.max_seq_length", "128", "--train.grad_accum", "1", "--train.learning_rate", "2e-3",
        "--train.warmup_steps", "0", "--lora.rank", "8", "--lora.alpha", "16", "--output", str(output),
    ]  # fmt: skip
    env = {**os.environ, "MEDARENA_TRAIN_BACKEND": "unsloth"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (output / MODEL).iterdir()
    return run_dir, json.loads((run_dir / "run.json").read_text()), result.stdout + result.stderr


def test_training_ran_through_unsloth_with_every_projection(unsloth_run: tuple[Path, dict, str]) -> None:
    run_dir, run, log = unsloth_run
    assert run["backend"] == "unsloth-cpu"
    assert "Unsloth (CPU): LlamaForCausalLM" in log and "4-bit = True" in log  # FastLanguageModel ran
    assert run["lora_target_modules"] == ALL_PROJECTIONS  # resolved from the loaded model
    # r=8 on all 7 projections of 30 SmolLM2 layers, as Unsloth's get_peft_model builds them.
    assert run["trainable_parameters"] == 2_442_240
    losses = [point["loss"] for point in run["losses"]]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    assert run["end_of_turn"] == "<|im_end|>"
    adapter_config = json.loads((run_dir / "adapter_config.json").read_text())
    assert sorted(adapter_config["target_modules"]) == sorted(ALL_PROJECTIONS)
    assert adapter_config["r"] == 8


def test_unsloth_adapter_reloads_on_the_serving_path_and_changes_the_answer(
    unsloth_run: tuple[Path, dict, str],
) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    from finetune.loading import load_serving_base
    from finetune.prompt import render_prompt

    run_dir, _, _ = unsloth_run
    base = load_serving_base(MODEL)
    assert base.backend == SERVING_BACKEND  # serving never goes through Unsloth
    inputs = base.tokenizer(
        render_prompt(base.tokenizer, "What does an ECG show in hyperkalaemia?"),
        return_tensors="pt",
        add_special_tokens=False,
    )
    tuned = PeftModel.from_pretrained(base.model, str(run_dir))
    tuned.eval()
    saved = load_file(run_dir / "adapter_model.safetensors")
    loaded = {name: p for name, p in tuned.named_parameters() if "lora_" in name}
    assert len(loaded) == len(saved) == 30 * 7 * 2  # every saved LoRA matrix found a module
    with torch.no_grad():
        adapted = tuned(**inputs).logits[0, -1]
        with tuned.disable_adapter():
            plain = tuned(**inputs).logits[0, -1]
    assert (adapted - plain).abs().max().item() > 1e-3
