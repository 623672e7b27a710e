"""What the vLLM backend starts on a GPU, checked here without one (issue #19, faults 1, 6, 11).

- fault 1: vLLM 0.32 has no bitsandbytes method, so CUDA serves the full-precision hf_id (or an
  AWQ/GPTQ repo the registry names); the exact CUDA engine arguments of every seed go through
  vLLM's own `ModelConfig` validation on its twin. Unverified here: CUDA kernels, memory
  profiling and graph capture (vLLM's CPU platform builds none of them).
- fault 6: each engine's `gpu_memory_utilization` is an equal share of what NVML says is free,
  and without --models at most DEFAULT_CUDA_BASES bases start.
- fault 11: bf16 from sm80 on, fp16 below (a T4 is sm75).

Run: ``python -m pytest tests/test_gpu_planning.py -q``
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.serving.vllm_config import (
    DEFAULT_CUDA_BASES,
    VLLMSettings,
    engine_arguments,
    engine_memory_fraction,
    served_model,
    vllm_vram_mb,
)
from finetune.gpu import cuda_dtype, plan_vram
from finetune.loading import BaseUnavailableError
from finetune.registry import MODELS, get_args
from finetune.registry import VLLMQuantization as Quantization

SEEDS = [spec for spec in MODELS if spec.architecture is not None]


@pytest.mark.parametrize(
    ("capability", "dtype"), [((7, 5), "float16"), ((8, 0), "bfloat16"), ((9, 0), "bfloat16")]
)
def test_serving_dtype_follows_the_card(capability: tuple[int, int], dtype: str) -> None:
    assert cuda_dtype(capability) == dtype


def test_each_engine_gets_an_equal_share_of_the_free_memory() -> None:
    settings = VLLMSettings()  # 0.9 of the card for all engines together
    assert engine_memory_fraction(settings, free_mb=81_000, total_mb=81_920, bases=2) == pytest.approx(0.45)
    # Another process holds 60 GB: only what is free is shared out.
    share = engine_memory_fraction(settings, free_mb=21_920, total_mb=81_920, bases=2)
    assert share == pytest.approx((21_920 - 1024) / 81_920 / 2, abs=1e-4)
    with pytest.raises(BaseUnavailableError, match="no room"):
        engine_memory_fraction(settings, free_mb=900, total_mb=81_920, bases=1)


def test_the_default_cuda_set_is_capped_and_planned_in_served_precision() -> None:
    chosen, left_out = plan_vram(list(MODELS)[:DEFAULT_CUDA_BASES], 81_000, need_mb=vllm_vram_mb)
    # Llama-3-8B in bf16 is ~18 GB with vLLM's runtime: the first four seeds fit an 80 GB card...
    assert [s.key for s in chosen] == [s.key for s in MODELS[:DEFAULT_CUDA_BASES]] and not left_out
    # ...and a 24 GB card takes the first only, saying why the others are left out.
    chosen, left_out = plan_vram(list(MODELS)[:DEFAULT_CUDA_BASES], 24_000, need_mb=vllm_vram_mb)
    assert [s.key for s in chosen] == ["llama3-8b"] and len(left_out) == DEFAULT_CUDA_BASES - 1


@pytest.mark.slow  # imports vLLM
def test_no_seed_asks_vllm_for_a_method_it_lacks() -> None:
    pytest.importorskip("vllm")
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    assert "bitsandbytes" not in QUANTIZATION_METHODS  # why the bnb-4bit repos cannot be served
    assert set(get_args(Quantization)) <= set(QUANTIZATION_METHODS)
    for spec in MODELS:
        args = engine_arguments(served_model(spec, VLLMSettings(), cuda="bfloat16"), VLLMSettings(), 16, 0.45)
        assert args["quantization"] in (None, *QUANTIZATION_METHODS)
        assert args["model"] == spec.vllm_cuda_id == (spec.vllm_id or spec.hf_id)


@pytest.mark.slow  # builds twins and imports vLLM's config machinery
@pytest.mark.parametrize("key", [spec.key for spec in SEEDS])
def test_cuda_engine_arguments_pass_vllms_model_validation_on_the_twin(
    key: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("vllm")
    from vllm.engine.arg_utils import AsyncEngineArgs

    from finetune.registry import get_model
    from tests.tiny_models import VLLM_IMAGE_TEXT_REASON, build_twin, vllm_serves_image_text

    spec = get_model(key)
    if spec.architecture.vision and not vllm_serves_image_text():
        pytest.skip(VLLM_IMAGE_TEXT_REASON)
    root = tmp_path_factory.mktemp("twins")
    build_twin(spec, root)
    monkeypatch.setenv("MEDARENA_TWINS", str(root))
    for card in ("bfloat16", "float16"):  # an H100 and a T4
        served = served_model(spec, VLLMSettings(), cuda=card)
        assert Path(served.source).parent == root  # the twin of the repo CUDA serves
        args = engine_arguments(served, VLLMSettings(max_model_len=512), 16, 0.45)
        config = AsyncEngineArgs(**args).create_model_config()
        expected = card if card == "bfloat16" or spec.fp16_serving else "float32"  # Gemma-2 on a T4
        assert (repr(config.dtype), config.quantization) == (f"torch.{expected}", None)
        assert config.max_model_len == 512 and args["enable_lora"] and args["gpu_memory_utilization"] == 0.45
