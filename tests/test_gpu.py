"""The CUDA path: Unsloth trains, plain transformers serves. Skipped without CUDA.

What the CPU tests (tests/test_unsloth_cpu.py, tests/test_gpu_path.py) cannot show: Unsloth's CUDA
kernels, bitsandbytes' CUDA 4-bit matmuls, VRAM telemetry, and that a served base on CUDA answers
without an adapter. On a GPU machine without hub access, point MEDARENA_BASE_SMOLLM2_135M at a local
checkpoint (a pre-quantized 4-bit folder or the full-precision repo).

Run: ``python -m pytest tests/test_gpu.py -q`` (on a CUDA machine with `pip install -e '.[gpu]'`)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def skip_without_unsloth() -> None:
    """Skip unless Unsloth is installed, without importing it: its import patches transformers."""
    if importlib.util.find_spec("unsloth") is None:
        pytest.skip("setup.sh --test installs Unsloth (--no-deps) for these tests")


torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    skip_without_unsloth()
    from finetune.config import build_config
    from finetune.registry import get_model
    from finetune.train import train_one

    config = build_config(
        flags={
            # A learning rate high enough that 3 steps move the logits clearly off the base's.
            "train": {"max_steps": 3, "max_seq_length": 128, "learning_rate": 2e-3},
            "data": {"limit": 16},
            "output_dir": str(tmp_path_factory.mktemp("cuda-adapters")),
        }
    )
    return train_one(get_model("smollm2-135m"), config).run | {"_config": config}


def test_unsloth_training_on_cuda_measures_vram(cuda_run: dict) -> None:
    assert cuda_run["backend"] == "unsloth-cuda"
    assert cuda_run["memory"]["peak_vram_mb"] > 0
    assert cuda_run["lora_target_modules"] == [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    ]  # fmt: skip


def test_cuda_serving_base_is_plain_transformers_and_the_base_contestant_has_no_adapter(
    cuda_run: dict, tmp_path: Path
) -> None:
    """Unsloth's fast_linear_forward would apply the active adapter to the base row too.

    Behaviour, not module names: Unsloth (imported by the training fixture) replaces the decoder
    classes' forwards with gate wrappers that keep `__module__ = unsloth.models.llama` and route a
    model Unsloth did not load to transformers' own code, so a name check fails on a correct engine.
    """
    from arena.serving.peft_engine import ArenaEngine
    from finetune.loading import load_serving_base

    adapters = Path(cuda_run["_config"].output_dir)
    engine = ArenaEngine.start(adapters_dir=adapters, model_keys=["smollm2-135m"])
    names = engine.contestant_names()
    tuned = next(name for name in names if engine.contestant(name).adapter_run is not None)
    plain_name = next(name for name in names if engine.contestant(name).adapter_run is None)
    resident = engine.base_for(tuned)
    assert resident.loaded.backend == "bnb-4bit-cuda"
    rows = [engine.contestant(tuned).adapter_name, engine.contestant(plain_name).adapter_name]
    plain = load_serving_base("smollm2-135m")
    inputs = plain.tokenizer(["What is sepsis?"] * 2, return_tensors="pt").to("cuda")
    with torch.no_grad():
        reference = plain.model(**inputs).logits[:, -1]
        with resident.route_rows(rows):  # one battle's batch: the adapter row and the base row
            mixed = resident.model(**inputs).logits[:, -1]
        adapter_alone = resident.model(**inputs, adapter_names=[rows[0]] * 2).logits[:, -1]
    torch.testing.assert_close(mixed[1], reference[1], atol=1e-2, rtol=1e-2)  # base row: no adapter
    torch.testing.assert_close(mixed[0], adapter_alone[0], atol=1e-2, rtol=1e-2)  # adapter row: its own
    assert (mixed[0] - mixed[1]).abs().max().item() > 0.05  # and the adapter does change the answer


def test_fastmodel_text_only_trains_a_medgemma_layout_and_its_adapter_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA-only: Unsloth's CPU fallback passes text_only through to transformers, which rejects it."""
    skip_without_unsloth()
    from peft import PeftModel
    from safetensors.torch import load_file

    from finetune.config import build_config
    from finetune.loading import load_base
    from finetune.registry import get_model
    from finetune.steps import attach_lora
    from tests.tiny_models import build_twin

    spec = get_model("medgemma-4b-it")
    folder = build_twin(spec, tmp_path)[spec.bnb_4bit_id]
    monkeypatch.setenv("MEDARENA_BASE_MEDGEMMA_4B_IT", str(folder))
    base = load_base("medgemma-4b-it", purpose="train", max_seq_length=128)
    assert base.backend == "unsloth-cuda"
    assert not [n for n, _ in base.model.named_modules() if "vision" in n]  # no vision tower in VRAM
    assert isinstance(base.tokenizer("a question")["input_ids"][0], int)  # a tokenizer, not a processor
    model, modules = attach_lora(base, build_config(flags={"lora": {"rank": 4, "alpha": 8}}))
    assert modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model.save_pretrained(tmp_path / "adapter")
    served = load_base("medgemma-4b-it", purpose="serve")
    tuned = PeftModel.from_pretrained(served.model, str(tmp_path / "adapter"))
    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert sum("lora_" in name for name, _ in tuned.named_parameters()) == len(saved)
